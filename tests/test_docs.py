"""Docs stay true: the README's two commands, every command and every setting documented."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tamizdat.cli import main
from tamizdat.server.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
DOCS = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))) + (ROOT / "README.md").read_text()


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        out.append(path)
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, path))
    return out


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:sh|bash)?\n(.*?)```", readme, re.DOTALL)
    assert first_block and readme.index(first_block.group(0)) < readme.index("\n\n", readme.index("\n") + 1) + 2
    commands = [line for line in first_block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    assert "tamizdat demo" in commands[0] and "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_every_command_is_documented() -> None:
    missing = [" ".join(c) for c in _commands(main) if f"tamizdat {' '.join(c)}" not in DOCS]
    assert not missing, f"commands without docs: {missing}"


def test_every_setting_is_documented_with_its_help() -> None:
    operator = (ROOT / "docs" / "operator-origin.md").read_text() + (ROOT / "docs" / "operator-mirror.md").read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in operator]
    assert not missing, f"settings not in the operator docs: {missing}"
