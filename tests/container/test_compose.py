"""compose.yaml and .env.example: the default service started as the quick start says, and their contents.

The quick start copies .env.example to .env, sets ADMIN_PASSWORD and runs `docker compose up -d`; here
podman-compose runs the repository's compose.yaml from a copy, with free host ports chosen in .env and
the image built from the Dockerfile. The scale profile's official images cannot be pulled here, so its
shape is checked from the file.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml  # type: ignore[import-untyped]

from claude_code_api.config import Settings, load_settings
from tests.container.engine import REPO, Podman, run_command
from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration.gateway_harness import free_ports


@pytest.mark.container
def test_compose_up_serves_the_api_and_admin_site_from_the_quick_start(
    podman: Podman, podman_compose: str, image: str, tmp_path: Path
) -> None:
    project = tmp_path / f"cca-compose-{secrets.token_hex(3)}"
    project.mkdir()
    shutil.copy(REPO / "compose.yaml", project)
    shutil.copytree(REPO / "deploy", project / "deploy")
    env_file = (REPO / ".env.example").read_text()
    assert "\nADMIN_PASSWORD=changeme\n" in env_file
    port, https_port = free_ports(2)
    env_file = env_file.replace("\nADMIN_PASSWORD=changeme\n", "\nADMIN_PASSWORD=a-compose-test-password\n")
    (project / ".env").write_text(f"{env_file}\nPORT={port}\nHTTPS_PORT={https_port}\n")

    def compose(*args: str, timeout: float = 180) -> str:
        result = run_command(
            [podman_compose, "--project-name", project.name, *args],
            env=podman.env,
            cwd=project,
            timeout=timeout,
        )
        return result.stdout

    try:
        started = time.monotonic()
        compose("up", "--detach", "--no-build")
        health = wait_for_health(f"http://127.0.0.1:{port}/v1/health")
        podman.timings["compose up to healthy"] = f"{time.monotonic() - started:.1f} s"
        assert health["status"] == "ok"
        services = compose("ps", "--format", "{{.Names}}").split()
        assert services == [f"{project.name}_gateway_1"], "only the default service starts"

        output = compose(
            "exec", "-T", "gateway", "claude-code-api", "keys", "create", "--name", "compose",
            "--oauth-token", FAKE_OAUTH_TOKEN,
        )  # fmt: skip
        api_key = output.strip().splitlines()[-1]
        with openai.OpenAI(api_key=api_key, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0) as client:
            models = [model.id for model in client.models.list()]
        assert "sonnet" in models
        admin = httpx.get(f"https://127.0.0.1:{https_port}/", verify=False, timeout=10)
        assert admin.status_code < 500
        assert podman.inspect(f"{project.name}_data")["Name"] == f"{project.name}_data"

        compose("stop")
        state: dict[str, Any] = podman.inspect(f"{project.name}_gateway_1")["State"]  # type: ignore[assignment]
        assert state["ExitCode"] == 0
    finally:
        run_command(
            [podman_compose, "--project-name", project.name, "down", "--volumes"],
            env=podman.env,
            cwd=project,
            check=False,
            timeout=120,
        )


def wait_for_health(url: str, within: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            problem = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            problem = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {within} s: {problem}")
        time.sleep(0.3)


# --- the files themselves -------------------------------------------------------------------------

ENV_LINE = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$")


def compose_file() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return loaded


def documented_variables() -> dict[str, str]:
    """NAME -> documented default, from .env.example's `NAME=value` and `# NAME=value` lines."""
    found = {}
    lines = (REPO / ".env.example").read_text().splitlines()
    for previous, line in zip(["", *lines], lines, strict=False):
        match = ENV_LINE.match(line)
        if match:
            assert previous.startswith("# "), f"{line}: no comment above it"
            assert not ENV_LINE.match(previous), f"{line}: no comment above it"
            found[match.group(1)] = match.group(2)
    return found


def test_env_example_lists_every_setting_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    documented = documented_variables()
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        assert variable in documented, f"{variable} is missing from .env.example"
        default = field.get_default(call_default_factory=True)
        value = documented[variable]
        if default is None or default == []:
            assert value == "", f"{variable}: documented {value!r}, but it has no default"
            continue
        monkeypatch.setenv(variable, value)
        assert getattr(load_settings(), name) == default, f"{variable}: .env.example says {value!r}"
        monkeypatch.delenv(variable)


def test_env_example_lists_only_settings_and_compose_variables() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    compose_text = (REPO / "compose.yaml").read_text()
    for variable in documented_variables():
        assert variable in settings or f"${{{variable}" in compose_text, f"{variable} is used nowhere"


def test_compose_default_service_is_the_gateway_with_a_named_volume_and_env_file() -> None:
    services = compose_file()["services"]
    default = [name for name, service in services.items() if "profiles" not in service]
    assert default == ["gateway"]
    gateway = services["gateway"]
    assert gateway["env_file"] == ".env"
    assert "data:/data" in gateway["volumes"]
    assert "data" in compose_file()["volumes"]
    assert gateway["environment"]["HOST"] == "0.0.0.0"


def test_compose_scale_profile_puts_two_gateways_behind_one_proxy_port() -> None:
    services = compose_file()["services"]
    scaled = {name for name, service in services.items() if "scale" in service.get("profiles", [])}
    assert scaled == {"gateway-a", "gateway-b", "proxy", "postgres", "redis"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    published = [name for name in scaled if services[name].get("ports")]
    assert published == ["proxy"]
    assert len(services["proxy"]["ports"]) == 1
    for name in ("gateway-a", "gateway-b"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql://")
        assert environment["REDIS_URL"].startswith("redis://")
        assert environment["TRUST_PROXY_HEADERS"] == "true"
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy gateway-a:8000 gateway-b:8000" in caddyfile


def test_compose_offers_the_cloudflared_tunnel_commented_out() -> None:
    text = (REPO / "compose.yaml").read_text()
    assert "cloudflared" not in compose_file()["services"]
    assert "#   image: cloudflare/cloudflared:latest" in text
    assert "#     - TUNNEL_TOKEN=${CLOUDFLARE_TUNNEL_TOKEN}" in text
