"""Podman for the container tests: installed when missing, set up for this machine, and a Debian base image.

No image can be pulled here, so the image under test is built from a local stand-in for the official
Python slim image: Debian bookworm with python3 and venv, made with debootstrap once and cached as a
tarball (and as a podman image) under ~/.cache/claude-code-api. See shared/CONTAINERS.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "claude-code-api"
APT_PACKAGES = ("podman", "runc", "debootstrap")

# crun fails on this machine's hybrid cgroups, and podman's default ulimits may not be raised here.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""

# What the official python:3.11-slim-bookworm image offers the Dockerfile: python3 with venv, apt,
# useradd and CA certificates.
BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")
# Left out of the base, as the official slim images leave them out: 204 MB becomes about 130 MB.
BASE_PRUNED = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)


class EngineUnavailable(Exception):
    """Raised when podman (or a tool the tests need) cannot be installed or does not work here."""


def unavailable(message: str) -> None:
    """Fails the test under CI, where the engine must work, and skips it elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(f"{message} Skipped outside CI; CI=true makes this a failure.")


@dataclass
class Podman:
    """The podman command with this machine's containers.conf, and the figures the tests measure."""

    env: dict[str, str]
    timings: dict[str, str] = field(default_factory=dict)

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Runs `podman ARGS`; raises with podman's output when it fails and `check` is set."""
        return run_command(["podman", *args], env=self.env, check=check, timeout=timeout, input=input)

    def image_exists(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0

    def inspect(self, name: str) -> dict[str, object]:
        """The first object `podman inspect NAME` describes (image, container or volume)."""
        found: list[dict[str, object]] = json.loads(self("inspect", name).stdout)
        return found[0]


def run_command(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs a command with its output captured; when it fails, the error shows what it printed."""
    result = subprocess.run(
        list(command),
        env=env,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"`{' '.join(command)}` exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
        )
    return result


def start_podman() -> Podman:
    """Returns a working podman, installing podman, runc and debootstrap with apt when missing."""
    missing = [tool for tool in APT_PACKAGES if shutil.which(tool) is None]
    if missing:
        _apt_install(missing)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    conf = CACHE_DIR / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    podman = Podman(env={**os.environ, "CONTAINERS_CONF": str(conf)})
    try:
        podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailable(f"podman is installed but does not work here: {exc}") from None
    return podman


def _apt_install(tools: list[str]) -> None:
    hint = f"install them with `apt-get install {' '.join(APT_PACKAGES)}`"
    if os.geteuid() != 0:
        raise EngineUnavailable(f"{', '.join(tools)} not found and not root: {hint}.")
    if shutil.which("apt-get") is None:
        raise EngineUnavailable(f"{', '.join(tools)} not found and no apt-get here: {hint}.")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run_command(["apt-get", "update", "-qq"], env=env, timeout=300)
        run_command(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], env=env, timeout=600)
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailable(f"apt-get could not install {', '.join(APT_PACKAGES)}: {exc}") from None


def python_tool(name: str, package: str) -> str:
    """The path of a console script of this virtual environment, pip-installing `package` when missing."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        try:
            run_command([sys.executable, "-m", "pip", "install", "--quiet", package], timeout=300)
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            raise EngineUnavailable(f"pip could not install {package}: {exc}") from None
    return str(path)


def base_image(podman: Podman) -> str:
    """The local Debian base image, made with debootstrap on first use and cached between runs."""
    recipe = f"{BASE_SUITE} {BASE_MIRROR} {' '.join(BASE_PACKAGES)} {' '.join(BASE_PRUNED)}"
    tag = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    name = f"localhost/claude-code-api-test-base:{BASE_SUITE}-{tag}"
    if podman.image_exists(name):
        podman.timings["base image"] = "cached in podman"
        return name
    tarball = CACHE_DIR / f"base-{BASE_SUITE}-{tag}.tar"
    started = time.monotonic()
    if not tarball.exists():
        _debootstrap(tarball)
        how = "debootstrap"
    else:
        how = "imported from the cached tarball"
    podman("import", str(tarball), name, timeout=300)
    podman.timings["base image"] = f"{how}, {time.monotonic() - started:.0f} s"
    return name


def _debootstrap(tarball: Path) -> None:
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise EngineUnavailable("making the base image needs root and debootstrap.")
    rootfs = CACHE_DIR / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    try:
        run_command(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                BASE_SUITE,
                str(rootfs),
                BASE_MIRROR,
            ],
            timeout=900,
        )
        for pruned in BASE_PRUNED:
            for entry in (rootfs / pruned).glob("*"):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        partial = tarball.with_suffix(".partial")
        run_command(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=300)
        partial.replace(tarball)
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailable(f"debootstrap could not make the base image: {exc}") from None
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def build_image(podman: Podman, base: str, tag: str) -> None:
    """Builds the repository's Dockerfile on `base` as `tag`; the layer cache makes rebuilds quick."""
    args = ["build", "--format", "docker", "--network", "host", "--build-arg", f"BASE_IMAGE={base}"]
    # This machine reaches PyPI through TLS interception: pip gets the host's CA bundle as a build
    # secret, which no layer keeps.
    ca_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca_bundle.exists():
        args += ["--secret", f"id=pip_cert,src={ca_bundle}"]
    started = time.monotonic()
    podman(*args, "--tag", tag, str(REPO), timeout=1200)
    podman.timings["image build"] = f"{time.monotonic() - started:.1f} s"
    size = int(podman("image", "inspect", tag, "--format", "{{.Size}}").stdout.strip())
    podman.timings["image size"] = f"{size / 1e6:.0f} MB"
