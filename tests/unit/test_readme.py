"""The README stays true: its set-up commands, its configuration table and CI's command."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from claude_code_api.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _configuration_rows() -> dict[str, str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([A-Z_]+)` \| [^|]+ \| (.+?) \|$", section, flags=re.MULTILINE))


def test_readme_starts_with_the_run_and_test_commands() -> None:
    commands = re.findall(r"```(?:sh|bash)?\n(.+?)\n```", README, flags=re.DOTALL)
    assert commands[:2] == ["make run", "make test"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert [line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))] == [
        "make test"
    ]


def test_every_setting_is_documented_in_the_configuration_table() -> None:
    documented = set(_configuration_rows())
    settings = {name.upper() for name in Settings.model_fields}
    assert sorted(settings - documented) == [], "settings missing from the README's table"
    assert sorted(documented - settings) == [], "README documents settings that do not exist"


def _shows(cell: str, default: object) -> bool:
    quoted = re.match(r"`([^`]*)`", cell)
    shown = quoted.group(1) if quoted else cell
    if isinstance(default, Enum):
        return shown == default.value
    if isinstance(default, bool):
        return shown == str(default).lower()
    if isinstance(default, int | float):
        return float(shown) == default
    if isinstance(default, Path):
        return Path(shown) == default
    return shown == str(default)


def test_documented_defaults_match_the_settings() -> None:
    rows = _configuration_rows()
    for name, field in Settings.model_fields.items():
        if field.default is None or field.default_factory is not None:
            continue
        assert _shows(rows[name.upper()], field.default), f"{name.upper()}: README shows {rows[name.upper()]}"
