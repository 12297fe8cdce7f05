"""Origin subcommands: ``serve``, ``tokens``, ``publish`` and ``import-feed``."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from tamizdat.clikit import audience_option, emit, guarded, json_option
from tamizdat.errors import UsageError

from . import tokens as tokens_mod
from .datadir import DataDir
from .store import Store

TOKEN_ENV = "TAMIZDAT_TOKEN"

data_option = click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The origin's data directory.",
)
server_option = click.option("--server", "server", required=True, metavar="URL", help="Base URL of the origin.")
token_option = click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help=f"File holding the API token (or set {TOKEN_ENV}).",
)


def read_token(token_file: Path | None) -> str:
    token = token_file.read_text().strip() if token_file is not None else os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"give --token-file or set {TOKEN_ENV}", code="no-token")
    return token


@click.command("serve")
@data_option
@click.option(
    "--keys",
    "keys_dir",
    default=None,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Key directory (root.json, roots/, signing/). Recorded on the first run.",
)
@click.option("--listen", default=None, metavar="HOST:PORT", help="Address to serve on (default 127.0.0.1:8080).")
@audience_option
@guarded
def serve_cmd(data_dir: Path, keys_dir: Path | None, listen: str | None, audience: list[str] | None) -> None:
    """Run the origin: publishing API, publishing rounds and the static tree."""
    from .app import make_app, parse_listen, run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = DataDir(data_dir).create()
    first_run = not data.settings_path.exists()
    values = data.settings()
    overrides: dict[str, Any] = {}
    if keys_dir is not None:
        overrides["keys"] = str(keys_dir.resolve())
    if listen is not None:
        parse_listen(listen)
        overrides["listen"] = listen
    if audience is not None:
        overrides["audience"] = audience
    if first_run or not values["keys"]:
        data.save_settings({**values, **overrides})
    values.update(overrides)
    if not values["keys"]:
        raise UsageError("give --keys (it is recorded in settings.toml on the first run)", code="usage")
    keys = Path(values["keys"])
    app = make_app(data.root, keys, **{k: v for k, v in overrides.items() if k != "keys"})
    run(app, values["listen"])


@click.group("tokens")
def tokens_group() -> None:
    """API tokens for `publish`, `import-feed` and other API clients."""


def _store(data_dir: Path) -> Store:
    data = DataDir(data_dir)
    if not data.root.is_dir():
        raise UsageError(f"{data_dir} is not a data directory", code="usage")
    return Store.in_state_dir(data.create().state)


@tokens_group.command("create")
@click.argument("name")
@data_option
@json_option
@guarded
def tokens_create(name: str, data_dir: Path, as_json: bool) -> None:
    """Make a token; it is printed once and only its hash is kept."""

    async def go() -> str:
        async with _store(data_dir) as store:
            return await tokens_mod.create(store, name)

    token = asyncio.run(go())
    emit(as_json, {"ok": True, "name": name, "token": token}, token)
    if not as_json and sys.stderr.isatty():
        click.echo("Store it now: it is not shown again.", err=True)


@tokens_group.command("list")
@data_option
@json_option
@guarded
def tokens_list(data_dir: Path, as_json: bool) -> None:
    """List tokens (names and dates; never the tokens)."""

    async def go() -> list[tokens_mod.TokenInfo]:
        async with _store(data_dir) as store:
            return await tokens_mod.listing(store)

    items = asyncio.run(go())
    data = {"ok": True, "tokens": [{"name": t.name, "created": t.created, "revoked": t.revoked} for t in items]}
    lines = [f"{t.name}\tcreated {t.created}" + (f"\trevoked {t.revoked}" if t.revoked else "") for t in items]
    emit(as_json, data, "\n".join(lines) or "no tokens")


@tokens_group.command("revoke")
@click.argument("name")
@data_option
@json_option
@guarded
def tokens_revoke(name: str, data_dir: Path, as_json: bool) -> None:
    """Revoke a token: it answers 403 from now on."""

    async def go() -> None:
        async with _store(data_dir) as store:
            await tokens_mod.revoke(store, name)

    asyncio.run(go())
    emit(as_json, {"ok": True, "name": name}, f"revoked {name}")


@click.command("publish")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_option
@token_option
@json_option
@guarded
def publish_cmd(files: tuple[Path, ...], server: str, token_file: Path | None, as_json: bool) -> None:
    """Publish articles from JSON (bundle build schema) or Markdown with YAML front matter."""
    from .ingest import publish_files

    results = asyncio.run(publish_files(list(files), server=server, token=read_token(token_file)))
    lines = [f"{r['action']:<9} {r['id']} v{r['version']} bundle {r['bundle_id']}" for r in results]
    emit(as_json, {"ok": True, "results": results}, "\n".join(lines))


@click.command("import-feed")
@click.argument("source")
@server_option
@token_option
@click.option("--lang", default=None, help="Language tag when the feed names none (default: en).")
@json_option
@guarded
def import_feed_cmd(source: str, server: str, token_file: Path | None, lang: str | None, as_json: bool) -> None:
    """Import an RSS or Atom feed (URL or file); importing again updates, never duplicates."""
    from .feeds import import_feed

    results = asyncio.run(import_feed(source, server=server, token=read_token(token_file), default_lang=lang))
    lines = [f"{r['action']:<9} {r['id']} v{r['version']} {r['title']}" for r in results]
    emit(as_json, {"ok": True, "results": results}, "\n".join(lines) or "the feed has no entries")


def register(group: click.Group) -> None:
    """Add the server's subcommands to ``group``."""
    for command in (serve_cmd, tokens_group, publish_cmd, import_feed_cmd):
        group.add_command(command)
