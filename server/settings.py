"""The settings registry: every operator setting, its type, default and help text.

Settings live in ``DATA/settings.toml``; command-line options override them for
one run and the first run records what it was given (DESIGN: "CLI shapes").
A test checks that every setting here is documented in docs/.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamizdat.errors import UsageError
from tamizdat.fsutil import atomic_write


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("role", str, "origin", "What this data directory is: 'origin' (publishes) or 'mirror' (copies)."),
    Setting("listen", str, "127.0.0.1:8080", "Address and port to serve on (HOST:PORT)."),
    Setting("keys", str, "", "Origin: the key directory holding root.json and the online signing keys."),
    Setting("root_keyid", str, "", "Mirror: the publisher's root key id; the only thing a mirror trusts."),
    Setting("upstreams", list, [], "Mirror: base URLs or directories to sync from, tried in order."),
    Setting("sync_interval", int, 300, "Mirror: seconds between syncs."),
    Setting("keep_superseded", bool, True, "Mirror: keep bundles that a newer version superseded."),
    Setting(
        "workers",
        int,
        1,
        "Mirror: processes serving the port (1-64, SO_REUSEPORT); the first also syncs, the others only serve.",
    ),
    Setting("mirrors", list, [], "Origin: official mirror URLs published in the signed index."),
    Setting("index_lifetime", int, 86400, "Origin: seconds an index stays valid; it is re-signed well before."),
    Setting("round_seconds", float, 5.0, "Origin: publishing changes are batched into rounds this long."),
    Setting(
        "shard_grace",
        int,
        600,
        "Origin: seconds an old shard file stays after the newest index stopped listing it (mirrors mid-sync).",
    ),
    Setting(
        "pack_workers",
        int,
        0,
        "Origin: processes that build bundles; 0 means one per CPU core (at most 4).",
    ),
    Setting(
        "tlog_gather_interval",
        float,
        30.0,
        "Origin: seconds between fetches of the witnesses' cosigned log checkpoints (also right after each round).",
    ),
    Setting(
        "tlog_partial_grace",
        int,
        7 * 24 * 3600,
        "Origin and mirror: seconds a partial log tile stays served after its full tile exists (readers mid-fetch).",
    ),
    Setting("max_request_bytes", int, 16 * 1024 * 1024, "Origin: largest API request body accepted."),
    Setting("access_log", bool, False, "Log requests (method, path, status, time; never a client address)."),
    Setting("audience", list, [], "Regions this node serves (e.g. ['RU', 'BY']); empty means warn everyone."),
    Setting("descriptive_titles", bool, False, "Put headlines in page titles (off: neutral titles)."),
    Setting("leave_url", str, "https://www.google.com/search?q=weather", "Reader pages: where the Leave control goes."),
    Setting("public_url", str, "", "Base URL readers use for this node (share links); empty: taken from the request."),
    Setting(
        "witness_name",
        str,
        "",
        "Mirror: the witness key's name in its cosignatures; empty: recorded on first use as the public_url host, "
        "else mirror-<key id>.",
    ),
)
BY_NAME = {s.name: s for s in SETTINGS}


def _check(setting: Setting, value: Any) -> Any:
    if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if setting.type is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"setting {setting.name} must be a list of strings", code="bad-settings")
    elif type(value) is not setting.type:
        raise UsageError(f"setting {setting.name} must be a {setting.type.__name__}", code="bad-settings")
    return value


def load(path: Path) -> dict[str, Any]:
    """Read settings.toml (missing file: defaults); unknown names are an error."""
    values = {s.name: s.default for s in SETTINGS}
    if not path.exists():
        return values
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path.name} is not valid TOML: {exc}", code="bad-settings") from exc
    for name, value in doc.items():
        setting = BY_NAME.get(name)
        if setting is None:
            raise UsageError(f"{path.name} has an unknown setting {name!r}", code="bad-settings")
        values[name] = _check(setting, value)
    return values


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def save(path: Path, values: dict[str, Any]) -> None:
    """Write settings.toml with each setting's help as a comment (only non-defaults)."""
    lines = ["# tamizdat settings (docs/operator-origin.md, docs/operator-mirror.md)", ""]
    for s in SETTINGS:
        if s.name in values and values[s.name] != s.default:
            lines += [f"# {s.help}", f"{s.name} = {_toml_value(_check(s, values[s.name]))}", ""]
    atomic_write(path, "\n".join(lines).encode("utf-8"))
