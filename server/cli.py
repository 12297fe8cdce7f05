"""Server subcommands (added by the origin server)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the server's subcommands to ``group``."""
