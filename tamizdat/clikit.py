"""Shared CLI plumbing: one-line errors, ``--json`` output, exit codes.

Exit codes everywhere: 0 ok, 1 rejected or failed, 2 usage (click's own).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from .errors import TamizdatError

P = ParamSpec("P")
R = TypeVar("R")

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")


def _regions(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    regions = sorted({r.strip().upper() for r in value.split(",") if r.strip()})
    if any(len(r) != 2 or not r.isalpha() or not r.isascii() for r in regions):
        raise click.BadParameter("a comma-separated list of two-letter region codes, e.g. RU,BY")
    return regions


audience_option = click.option(
    "--audience",
    default=None,
    metavar="RU,BY,...",
    callback=_regions,
    help="Regions this node serves: notices whose regions cannot apply are not shown (default: all notices).",
)


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    """Print ``data`` as JSON or ``text`` for people."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(text)


def fail(as_json: bool, err: TamizdatError) -> None:
    """Report ``err`` in one line (or JSON) and exit 1."""
    if as_json:
        click.echo(json.dumps({"ok": False, "error": err.to_dict()}, sort_keys=True, ensure_ascii=False))
    reason = err.message.splitlines()[0] if err.message else err.code
    click.echo(f"error: {reason}", err=True)
    sys.exit(1)


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn project errors and OS errors into a one-line reason and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json", False))
        try:
            return func(*args, **kwargs)
        except TamizdatError as err:
            fail(as_json, err)
        except OSError as err:
            name = Path(err.filename).name if err.filename else ""
            fail(as_json, TamizdatError(f"{err.strerror or err}{': ' + name if name else ''}", code="io"))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        raise AssertionError("unreachable")

    return wrapper


def read_passphrase(path: Path | None, env: str, *, prompt: str | None = None, confirm: bool = False) -> bytes | None:
    """A passphrase from a file, an environment variable, or (on a terminal) a prompt."""
    import os

    if path is not None:
        text = path.read_text().rstrip("\r\n")
        return text.encode() if text else None
    if os.environ.get(env):
        return os.environ[env].encode()
    if prompt and sys.stdin.isatty():
        value = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, default="", show_default=False)
        return value.encode() if value else None
    return None
