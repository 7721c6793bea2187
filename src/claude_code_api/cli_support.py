"""What the command line's commands share: settings read once with a one-line error, and plain output."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from claude_code_api.config import ConfigurationError, Settings, load_settings


def settings_or_exit() -> Settings:
    """The settings from the environment; a bad one ends the command with one line naming it."""
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise click.ClickException(f"Bad configuration: {exc}") from None


def when(moment: datetime | None) -> str:
    """A moment as the command line shows it, to the minute; `-` for none."""
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def print_table(rows: list[tuple[Any, ...]]) -> None:
    """Rows as left-aligned columns, the first row the heading."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
