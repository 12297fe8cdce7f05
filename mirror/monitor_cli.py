"""``tamizdat log monitor``: check that every leaf of the publisher's log is the publisher's own.

Exit codes: 0 clean, 3 alarm (unknown bundle or retraction, fork, rollback,
inconsistent entries), 1 failed (unreachable upstream, bad data, bad options),
2 usage.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from tamizdat.bundles.verify import check_root_keyid
from tamizdat.clikit import emit, guarded, json_option
from tamizdat.errors import TamizdatError, UsageError

from .monitor import IdFile, KnownIds, MonitorReport, MonitorState, OriginStore, load_state, monitor, save_state
from .upstream import make_upstream, normalize_spec

ALARM_EXIT = 3


@click.group("log")
def log_group() -> None:
    """The publisher's transparency log."""


async def _run(
    spec: str, root_keyid: str, known: KnownIds, state: MonitorState | None
) -> tuple[MonitorReport, MonitorState | None]:
    from tamizdat.server.httpclient import BoundedClient, ClientConfig

    config = ClientConfig(connect_timeout=10.0, read_timeout=30.0, total_timeout=120.0)
    async with BoundedClient(config) as client:
        return await monitor(make_upstream(spec, client), root_keyid, known, state)


@log_group.command("monitor")
@click.option("--root-key", "root_key", required=True, metavar="ID", help="The publisher's root key id (64 hex).")
@click.option(
    "--upstream", required=True, metavar="URL|DIR", help="The origin, a mirror or an export to read the log from."
)
@click.option(
    "--store",
    "store_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The origin's data directory: its bundle ids are the publisher's own (read-only).",
)
@click.option(
    "--ids",
    "ids_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of the publisher's bundle ids, one per line (instead of --store).",
)
@click.option(
    "--state",
    "state_file",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Remember the accepted checkpoint here: later runs read only new leaves and catch forks and rollbacks.",
)
@json_option
@guarded
def monitor_cmd(
    root_key: str,
    upstream: str,
    store_dir: Path | None,
    ids_file: Path | None,
    state_file: Path | None,
    as_json: bool,
) -> None:
    """Alarm (exit 3) on any logged bundle or retraction the publisher did not make, or on a fork."""
    if (store_dir is None) == (ids_file is None):
        raise click.UsageError("give exactly one of --store and --ids")
    try:
        keyid = check_root_keyid(root_key)
        spec = normalize_spec(upstream)
    except TamizdatError as exc:
        raise click.UsageError(exc.message) from None
    known: KnownIds
    if store_dir is not None:
        known = OriginStore(store_dir)
    else:
        assert ids_file is not None
        known = IdFile(ids_file)
    if state_file is not None and state_file.is_dir():
        raise UsageError(f"{state_file} is a directory", code="bad-state")
    state = load_state(state_file) if state_file is not None else None
    report, new_state = asyncio.run(_run(spec, keyid, known, state))
    if state_file is not None and new_state is not None:
        save_state(state_file, new_state)
    emit(as_json, report.to_json(), report.text())
    if not report.ok:
        sys.exit(ALARM_EXIT)


def register(group: click.Group) -> None:
    """Add ``monitor`` to the ``log`` group already on ``group`` (the origin's), else add this ``log`` group."""
    existing = group.commands.get("log")
    if isinstance(existing, click.Group) and existing is not log_group:
        existing.add_command(monitor_cmd)
    else:
        group.add_command(log_group)
