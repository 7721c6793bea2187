# Every target installs what it needs: a fresh machine needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: run test check lint bench clean chromium node-clients

run: $(STAMP)  ## Serve the API on :8000 and the admin site on :8443 (SQLite in ./data)
	$(BIN)/claude-code-api generate-certs --if-missing
	$(BIN)/claude-code-api serve

test: $(STAMP) chromium node-clients check  ## Lint, type-check, then run every test
	$(BIN)/pytest

check: $(STAMP)  ## ruff format --check, ruff check, mypy --strict, the import layers
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

lint: $(STAMP)  ## Fix what ruff can fix
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)  ## Run the benchmarks (prints figures; takes minutes)
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Browser tests drive Debian's Chromium; a downloaded browser is never used.
chromium:
	@test -x $(CHROMIUM) || { \
		echo "Installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The agentic clients the tests drive (Codex CLI, AI SDK), pinned in tests/clients/package-lock.json and
# installed from the npm registry; reinstalled when the lock file is newer than the installed tree.
CLIENTS := tests/clients
node-clients: $(CLIENTS)/node_modules/.package-lock.json  ## Install the pinned Node clients (npm ci)

$(CLIENTS)/node_modules/.package-lock.json: $(CLIENTS)/package-lock.json $(CLIENTS)/package.json
	@command -v npm >/dev/null || { echo "The client tests need Node 20+ and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix $(CLIENTS) --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(CLIENTS)/node_modules

.PHONY: test-container
test-container: $(STAMP)  ## Build the image with podman (installed if missing) and run the container tests
	$(BIN)/pytest tests/container
