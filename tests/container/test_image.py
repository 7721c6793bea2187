"""The image as an operator runs it: keys, chats, restarts and `docker stop`, with podman.

Each container runs the image's own entrypoint and command on the host network against the mock
Anthropic upstream, with its data on a named volume, as compose.yaml runs it (read-only, no capabilities).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import openai
import psutil
import pytest

from tests.container.conftest import UID, Gateway
from tests.container.engine import REPO, Podman
from tests.factories import FAKE_OAUTH_TOKEN
from tests.integration.mock_anthropic import Hang, MockAnthropic, Reply, echo_text

pytestmark = pytest.mark.container

# `docker stop` and `podman stop` send SIGKILL after 10 s; the gateway must be gone before that.
STOP_LIMIT_SECONDS = 10


def ask(gateway: Gateway, api_key: str, prompt: str, **options: Any) -> Any:
    with openai.OpenAI(api_key=api_key, base_url=gateway.base_url, max_retries=0, timeout=60) as client:
        return client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": prompt}], **options
        )


def container_claude_processes() -> list[psutil.Process]:
    """Claude Code processes started from the image's virtual environment, seen from the host."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if cmdline and cmdline[0].startswith("/opt/venv/") and cmdline[0].endswith("_bundled/claude"):
            found.append(process)
    return found


def wait_for_no_container_claude_process(within: float) -> list[str]:
    """Polls until no Claude process of the image runs; describes those left after `within` s."""
    deadline = time.monotonic() + within
    while (left := container_claude_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    described = []
    for process in left:
        try:
            cgroup = Path(f"/proc/{process.pid}/cgroup").read_text().strip()
            described.append(f"pid {process.pid} ({process.status()}), cgroup {cgroup}")
        except (OSError, psutil.Error):
            continue
    return described


def wait_for_prompt(mock: MockAnthropic, prompt: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(request.user_text == prompt for request in mock.message_requests):
            return
        time.sleep(0.05)
    raise AssertionError(f"the upstream never received {prompt!r}")


def test_a_key_made_with_keys_create_answers_chats_and_survives_a_new_container(
    podman: Podman, make_gateway: Any, mock_upstream: MockAnthropic
) -> None:
    first = make_gateway()
    podman.timings["start to healthy (first start)"] = f"{first.start():.1f} s"
    # The admin site's certificate was written into the volume at first start, not taken from the image.
    assert sorted(first.exec("ls", "/data/certs").split()) == ["cert.pem", "key.pem"]
    assert "BEGIN CERTIFICATE" in first.server_certificate()
    api_key = first.create_key()

    answer = ask(first, api_key, "Hello from a container")

    assert answer.choices[0].message.content == echo_text("Hello from a container")
    assert mock_upstream.last_request.bearer_token == FAKE_OAUTH_TOKEN
    server = psutil.Process(int(first.state()["Pid"]))
    assert server.uids().real == UID
    assert server.gids().real == UID
    assert first.stop().exit_code == 0
    first.remove()

    second = make_gateway()
    podman.timings["start to healthy (existing volume)"] = f"{second.start():.1f} s"
    answer = ask(second, api_key, "Still there?")

    assert answer.choices[0].message.content == echo_text("Still there?")
    stopped = second.stop()
    podman.timings["stop when idle"] = f"{stopped.seconds:.1f} s, exit {stopped.exit_code}"
    assert stopped.exit_code == 0
    assert stopped.seconds < STOP_LIMIT_SECONDS


def test_stop_lets_a_short_request_finish_then_exits_0(
    podman: Podman, make_gateway: Any, mock_upstream: MockAnthropic
) -> None:
    gateway = make_gateway()
    gateway.start()
    api_key = gateway.create_key()
    # About 2 s of streamed text: shorter than the 8 s the server gives in-flight requests.
    text = "word " * 40
    mock_upstream.queue(Reply(text=text, chunk_size=5, delay=0.05))
    outcome: dict[str, Any] = {}

    def request() -> None:
        try:
            outcome["answer"] = ask(gateway, api_key, "A short one")
        except Exception as exc:
            outcome["error"] = exc

    client = threading.Thread(target=request)
    client.start()
    wait_for_prompt(mock_upstream, "A short one")
    stopped = gateway.stop()
    client.join(30)

    assert "error" not in outcome, outcome.get("error")
    assert outcome["answer"].choices[0].message.content == text
    podman.timings["stop with a short request in flight"] = (
        f"{stopped.seconds:.1f} s, exit {stopped.exit_code}"
    )
    assert stopped.exit_code == 0
    assert stopped.seconds < STOP_LIMIT_SECONDS


def test_stop_cancels_a_hung_request_within_10_s_exits_0_and_leaves_no_claude_process(
    podman: Podman, make_gateway: Any, mock_upstream: MockAnthropic
) -> None:
    gateway = make_gateway()
    gateway.start()
    api_key = gateway.create_key()
    mock_upstream.always(Hang())
    outcome: dict[str, Any] = {}

    def request() -> None:
        try:
            chunks = list(ask(gateway, api_key, "Never answered", stream=True))
            outcome["chunks"] = chunks
        except Exception as exc:
            outcome["error"] = exc

    client = threading.Thread(target=request)
    client.start()
    wait_for_prompt(mock_upstream, "Never answered")
    assert container_claude_processes(), "no Claude process ran in the container"

    stopped = gateway.stop()
    client.join(30)

    podman.timings["stop with a hung request in flight"] = (
        f"{stopped.seconds:.1f} s, exit {stopped.exit_code}"
    )
    assert stopped.exit_code == 0, gateway.logs()
    assert stopped.seconds < STOP_LIMIT_SECONDS
    assert not client.is_alive()
    # The client learns its answer was cut short: an error, or a stream without a finish reason.
    finished = [c for c in outcome.get("chunks", []) if c.choices and c.choices[0].finish_reason]
    assert "error" in outcome or not finished
    assert wait_for_no_container_claude_process(within=3) == []
    assert "killing it" not in gateway.logs()


def test_stop_during_start_up_exits_0_at_once(podman: Podman, make_gateway: Any) -> None:
    gateway = make_gateway()
    podman(
        "run",
        "--detach",
        "--name",
        gateway.name,
        "--network",
        "host",
        "--volume",
        f"{gateway.volume}:/data",
        "--env",
        f"PORT={gateway.port}",
        "--env",
        f"HTTPS_PORT={gateway.https_port}",
        gateway.image,
    )

    stopped = gateway.stop()

    assert stopped.exit_code == 0, gateway.logs()
    assert stopped.seconds < STOP_LIMIT_SECONDS


def test_the_image_runs_as_a_numeric_user_and_holds_no_certificate_key_or_secret(
    podman: Podman, image: str
) -> None:
    config = podman.inspect(image)["Config"]
    assert isinstance(config, dict)
    assert config["User"] == f"{UID}:{UID}"
    assert "/data" in config["Volumes"]
    assert set(config["ExposedPorts"]) == {"8000/tcp", "8443/tcp"}
    assert config["Entrypoint"][-1] == "docker-entrypoint"
    assert config["Cmd"] == ["claude-code-api", "serve"]
    assert not any(name.startswith(("SECRET_KEY=", "ADMIN_PASSWORD=")) for name in config["Env"])
    # Walk the image's own filesystem (no volume mounted over /data) for anything secret.
    script = (
        "import os\n"
        "secret = {'cert.pem', 'key.pem', 'secret_key', 'pip_cert', '.env'}\n"
        "skip = ('/proc', '/sys', '/dev')\n"
        "for root, dirs, files in os.walk('/'):\n"
        "    dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]\n"
        "    for f in files:\n"
        "        path = os.path.join(root, f)\n"
        "        # Debian links /usr/lib/ssl/cert.pem to the public CA bundle: links are not secrets.\n"
        "        if (f in secret or f.endswith('.key')) and not os.path.islink(path):\n"
        "            print(path)\n"
        "print('data:', sorted(os.listdir('/data')))\n"
    )
    found = podman(
        "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", script
    ).stdout.splitlines()
    assert found == ["data: []"]
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "PRIVATE KEY" not in history
    assert "BEGIN CERTIFICATE" not in history


def test_the_build_context_holds_only_what_the_dockerfile_copies(podman: Podman, base: str, tmp_path) -> None:
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(f"FROM {base}\nCOPY . /context\n")
    tag = "localhost/claude-code-api-test-context:latest"
    podman("build", "--format", "docker", "--file", str(containerfile), "--tag", tag, str(REPO))
    try:
        listing = podman(
            "run", "--rm", "--network", "none", tag, "find", "/context", "-maxdepth", "2"
        ).stdout.split()
    finally:
        podman("rmi", "--force", tag, check=False)

    top = {path.split("/")[2] for path in listing if path.count("/") >= 2}
    assert top == {"pyproject.toml", "README.md", "requirements.lock", "src", "deploy"}
    assert "/context/deploy/docker-entrypoint.sh" in listing
    assert not any("__pycache__" in path for path in listing)
