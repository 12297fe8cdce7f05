"""``tamizdat mirror ...``: run a mirror, sync it, carry it on a USB stick.

Every subcommand takes ``--data DIR``. The first run records the root key id
and the upstreams in ``DATA/settings.toml``; later runs read them (options
given again override them for that run; a different root key id is refused).
Exit codes: 0 ok, 1 rejected or failed, 2 usage.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from tamizdat.bundles.verify import check_root_keyid
from tamizdat.clikit import audience_option, emit, guarded, json_option
from tamizdat.errors import TamizdatError, UsageError
from tamizdat.server.datadir import DataDir
from tamizdat.server.processes import MAX_PROCESSES

from .config import DEFAULT_CONFIG
from .state import SyncSummary
from .sync import Mirror, Progress
from .upstream import normalize_spec

data_option = click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The mirror's data directory (settings, state, public tree).",
)
root_option = click.option(
    "--root-key", "root_key", default=None, help="The publisher's root key id (recorded on the first run)."
)
upstream_option = click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    help="Base URL (http/https) or directory to sync from; repeat for failover (recorded on the first run).",
)


def resolve(data: DataDir, root_key: str | None, upstreams: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """Settings for this run; the first run records what it was given."""
    exists = data.settings_path.exists()
    values = data.settings()
    if exists and values["role"] != "mirror":
        raise click.UsageError(f"{data.root} is a data directory of role {values['role']!r}, not a mirror")
    record: dict[str, Any] = {}
    if root_key is not None:
        try:
            root_key = check_root_keyid(root_key)
        except TamizdatError as err:
            raise click.UsageError(err.message) from None
    if values["root_keyid"]:
        if root_key is not None and root_key != values["root_keyid"]:
            raise click.UsageError(
                f"{data.root} mirrors root key {values['root_keyid'][:16]}..., not {root_key[:16]}..."
            )
    elif root_key is None:
        raise click.UsageError("the first run needs --root-key (the publisher's root key id)")
    else:
        record["root_keyid"] = values["root_keyid"] = root_key
    given = [normalize_spec(u) for u in upstreams]
    if given:
        if not values["upstreams"]:
            record["upstreams"] = given
        values["upstreams"] = given  # given again: they override the recorded ones for this run
    first = not exists or "root_keyid" in record
    for name, value in extra.items():
        if value is not None:
            values[name] = value
            if first:
                record[name] = value
    if record or not exists:
        saved = data.settings()
        saved.update(record)
        saved["role"] = "mirror"
        data.create()
        data.save_settings(saved)
    values["role"] = "mirror"
    return values


def _mirror(data: DataDir, values: dict[str, Any], upstreams: list[str] | None = None) -> Mirror:
    config = DEFAULT_CONFIG
    threshold = os.environ.get("TAMIZDAT_TEST_PROCESS_THRESHOLD", "")  # test-only: worker processes for small syncs
    if threshold.isdigit():
        config = replace(config, process_threshold=int(threshold))
    grace = values["tlog_partial_grace"]
    if grace < 0:
        raise UsageError("setting tlog_partial_grace must not be negative (seconds)", code="bad-settings")
    mirror = Mirror(
        data,
        root_keyid=values["root_keyid"],
        upstreams=upstreams if upstreams is not None else values["upstreams"],
        keep_superseded=bool(values["keep_superseded"]),
        config=config,
        witness_name=values.get("witness_name") or None,
    )
    mirror.logsync.partial_grace = grace
    return mirror


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """A progress bar on a terminal (stderr), nothing otherwise."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("bundles"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[mb]:.1f} MB"),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    )
    task = bar.add_task("sync", total=None, mb=0.0)

    def update(done: int, total: int, nbytes: int) -> None:
        bar.update(task, completed=done, total=total, mb=nbytes / 1e6)

    with bar:
        yield update


def _text(summary: SyncSummary) -> str:
    lines = []
    if summary.ok:
        what = f"index version {summary.index_version}" if summary.changed else "already up to date"
        lines.append(f"sync ok from {summary.upstream}: {what}")
    else:
        lines.append(f"sync FAILED ({summary.code}); the previous index (version {summary.index_version}) stays served")
    lines.append(
        f"  new {summary.new}, retracted {summary.retracted}, pruned {summary.pruned}, rejected {summary.rejected}, "
        f"{summary.bytes / 1e6:.2f} MB in {summary.requests} requests, {summary.seconds:.2f} s"
    )
    for err in summary.errors:
        lines.append(f"  {err['upstream']}: {err['kind']} {err['code']}: {err['message']}")
    if summary.log:
        report = summary.log
        what = "cosigned" if report.get("cosigned") else "not cosigned this time"
        lines.append(f"  log: {report['state']}, size {report.get('size')}, {what}, quorum {report.get('quorum')}")
        if report.get("message"):
            lines.append(f"    {report['message']}")
    return "\n".join(lines)


def _run_sync(mirror: Mirror, as_json: bool) -> SyncSummary:
    show = not as_json and sys.stderr.isatty()
    with _progress(show) as progress:
        summary = asyncio.run(mirror.sync(progress))
    emit(as_json, summary.to_json(), _text(summary))
    return summary


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group("mirror")
def mirror_group() -> None:
    """Mirror a publisher: sync from upstreams, verify everything, serve the same static tree."""


@mirror_group.command("run")
@data_option
@root_option
@upstream_option
@click.option("--listen", default=None, help="HOST:PORT to serve on (default: the listen setting).")
@click.option("--interval", type=click.IntRange(min=1), default=None, help="Seconds between syncs.")
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=MAX_PROCESSES),
    default=None,
    help=f"Processes serving the port (1-{MAX_PROCESSES}; one syncs; default: the workers setting).",
)
@audience_option
@guarded
def run_cmd(
    data_dir: Path,
    root_key: str | None,
    upstreams: tuple[str, ...],
    listen: str | None,
    interval: int | None,
    workers: int | None,
    audience: list[str] | None,
) -> None:
    """Serve the mirror and sync it in the background."""
    from .app import make_app, run

    data = DataDir(data_dir)
    values = resolve(
        data, root_key, upstreams, sync_interval=interval, listen=listen, audience=audience, workers=workers
    )
    if not values["upstreams"]:
        raise click.UsageError("no upstream: give --upstream URL or DIR")
    if not 1 <= values["workers"] <= MAX_PROCESSES:
        raise click.UsageError(f"setting workers must be 1 to {MAX_PROCESSES}, not {values['workers']}")
    _logging(True)
    mirror = _mirror(data, values)
    app = make_app(mirror, interval=float(values["sync_interval"]), settings=values)
    run(app, values["listen"], access_log=bool(values["access_log"]), workers=values["workers"])


@mirror_group.command("sync")
@data_option
@root_option
@upstream_option
@click.option("--once", is_flag=True, help="Sync once and exit (for cron); without it, sync every interval.")
@click.option("--interval", type=click.IntRange(min=1), default=None, help="Seconds between syncs (without --once).")
@json_option
@guarded
def sync_cmd(
    data_dir: Path,
    root_key: str | None,
    upstreams: tuple[str, ...],
    once: bool,
    interval: int | None,
    as_json: bool,
) -> None:
    """Sync from the upstreams (verify everything; serve nothing: pair with nginx or `mirror run`)."""
    data = DataDir(data_dir)
    values = resolve(data, root_key, upstreams, sync_interval=interval)
    if not values["upstreams"]:
        raise click.UsageError("no upstream: give --upstream URL or DIR")
    _logging(False)
    mirror = _mirror(data, values)
    if once:
        summary = _run_sync(mirror, as_json)
        sys.exit(0 if summary.ok else 1)
    asyncio.run(_sync_loop(mirror, as_json, float(values["sync_interval"])))


async def _sync_loop(mirror: Mirror, as_json: bool, interval: float) -> None:
    while True:  # until interrupted
        summary = await mirror.sync()
        emit(as_json, summary.to_json(), _text(summary))
        await asyncio.sleep(interval)


@mirror_group.command("import")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_option
@root_option
@json_option
@guarded
def import_cmd(source: Path, data_dir: Path, root_key: str | None, as_json: bool) -> None:
    """Sync from a directory (a USB stick, an export) with full verification."""
    data = DataDir(data_dir)
    values = resolve(data, root_key, ())
    _logging(False)
    summary = _run_sync(_mirror(data, values, [str(source)]), as_json)
    sys.exit(0 if summary.ok else 1)


@mirror_group.command("export")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@data_option
@json_option
@guarded
def export_cmd(dest: Path, data_dir: Path, as_json: bool) -> None:
    """Write the verified tree as plain files (index.json last) for USB sticks and static hosts."""
    from dataclasses import asdict

    from .export import export_tree

    data = DataDir(data_dir)
    values = resolve(data, None, ())
    summary = export_tree(data, values["root_keyid"], dest)
    emit(
        as_json,
        {"ok": True, **asdict(summary)},
        f"exported index version {summary.index_version}: {summary.bundles} bundles "
        f"({summary.linked} linked, {summary.copied} copied, {summary.unchanged} unchanged, "
        f"{summary.removed} removed) to {dest}",
    )


def _mirror_dir(data_dir: Path) -> DataDir:
    """A data directory that is a mirror's, or not set up yet (then it becomes one)."""
    data = DataDir(data_dir)
    if data.settings_path.exists() and data.settings()["role"] != "mirror":
        raise click.UsageError(f"{data.root} is a data directory of role {data.settings()['role']!r}, not a mirror")
    return data.create()


@mirror_group.command("witness-key")
@data_option
@click.option(
    "--name",
    default=None,
    help="The key name in cosignatures (only when the key is created; default: the public_url host, "
    "else mirror-<key id>).",
)
@json_option
@guarded
def witness_key_cmd(data_dir: Path, name: str | None, as_json: bool) -> None:
    """Create the witness key if missing; print its vkey for the publisher's witness policy."""
    from .witnesskey import ensure_witness_key

    wkey = ensure_witness_key(_mirror_dir(data_dir), name=name)
    emit(as_json, {"ok": True, "name": wkey.name, "vkey": wkey.vkey(), "created": wkey.created}, wkey.vkey())


@mirror_group.command("witness-clear")
@data_option
@click.option(
    "--forget",
    is_flag=True,
    help="Also drop the accepted log view and this mirror's tiles: the next sync starts over from the upstream.",
)
@json_option
@guarded
def witness_clear_cmd(data_dir: Path, forget: bool, as_json: bool) -> None:
    """Clear a witness alarm (fork): cosigning resumes at the next sync; the evidence stays."""
    from .logsync import LogSync
    from .state import StateStore

    data = _mirror_dir(data_dir)
    with StateStore(data).lock(wait=60.0):
        out = LogSync(data, config=DEFAULT_CONFIG).clear(forget=forget)
    text = f"alarm {out['cleared']} cleared" if out["cleared"] else "no alarm was set"
    if forget:
        text += "; the accepted log view was dropped"
    emit(as_json, {"ok": True, **out}, text)


def register(group: click.Group) -> None:
    """Add the mirror's subcommands to ``group`` (and ``log monitor``)."""
    from .monitor_cli import register as register_monitor

    group.add_command(mirror_group)
    register_monitor(group)
