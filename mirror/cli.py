"""Mirror subcommands."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the mirror's subcommands to ``group``."""
