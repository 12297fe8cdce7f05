"""The root's ``tlog`` section and log keys: strict schema, key directory, ``keys`` commands."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import (
    GOLDEN,
    GOLDEN_ROOT_KEYID,
    GOLDEN_SIGNING_KEY,
    PUBLISHER,
    T_INIT,
    T_REVOKE,
    T_ROTATE_SIGNING,
    compact_json,
    fixed_key_generation,
    seed,
)

from tamizdat.bundles.tlog import CosignatureVerifier, LogTrust, PolicyError
from tamizdat.cli import main
from tamizdat.errors import FormatError, UsageError
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import LogSettings, Root, verify_root_chain

GOLDEN_V1: dict[str, Any] = json.loads(
    base64.b64decode(json.loads((GOLDEN / "keys" / "roots" / "1.json").read_bytes())["payload"])
)
# The golden root 1 as a publisher without a log has it: no tlog section, only the bundle key.
V1 = {k: v for k, v in GOLDEN_V1.items() if k != "tlog"}
V1["signing_keys"] = [k for k in GOLDEN_V1["signing_keys"] if k["keyid"] == GOLDEN_SIGNING_KEY.keyid]
ORIGIN = f"{GOLDEN_ROOT_KEYID}/log"
TLOG = {"origin": ORIGIN, "policy": "quorum none\n", "max_age": 604800}
SEEDS = [seed("log root"), seed("log online"), seed("log key")]
WITNESS = CosignatureVerifier("mirror-a.example", SigningKey.from_seed(seed("log witness")).public)


def _payload(**changes: Any) -> bytes:
    doc = copy.deepcopy(V1)
    doc.update(changes)
    return compact_json(doc)


def _witness_policy() -> str:
    return f"# mirrors\nwitness a {WITNESS.vkey()} https://a.example/\nquorum a\n"


def _root_of(envelope: bytes) -> Root:
    return Root.from_payload(base64.b64decode(json.loads(envelope)["payload"]))


# -- root schema ----------------------------------------------------------------------


def test_a_root_without_tlog_is_unchanged() -> None:
    root = Root.from_payload(_payload())
    assert root.tlog is None and root.log_keys() == {}
    assert root.to_payload() == _payload()


def test_the_golden_root_has_the_default_tlog_section() -> None:
    assert GOLDEN_V1["tlog"] == TLOG
    assert [k["purposes"] for k in GOLDEN_V1["signing_keys"] if k["keyid"] != GOLDEN_SIGNING_KEY.keyid] == [["log"]]


def test_tlog_round_trips() -> None:
    root = Root.from_payload(_payload(tlog=TLOG))
    assert root.tlog == LogSettings(ORIGIN, "quorum none\n", 604800)
    assert root.to_payload() == _payload(tlog=TLOG)


@pytest.mark.parametrize(
    "tlog",
    [
        "quorum none\n",
        {"origin": ORIGIN, "policy": "quorum none\n"},
        {**TLOG, "extra": 1},
        {**TLOG, "origin": ""},
        {**TLOG, "origin": "a b/log"},
        {**TLOG, "origin": "a+b/log"},
        {**TLOG, "origin": "caf\u00e9/log"},
        {**TLOG, "origin": "a\tb"},
        {**TLOG, "origin": "x" * 256},
        {**TLOG, "origin": 1},
        {**TLOG, "policy": ""},
        {**TLOG, "policy": "quorum none"},
        {**TLOG, "policy": "quorum none\r\n"},
        {**TLOG, "policy": "quorum none\n\x00"},
        {**TLOG, "policy": "witness caf\u00e9 x\nquorum none\n"},
        {**TLOG, "policy": "log example+01234567+AAAA\nquorum none\n"},
        {**TLOG, "policy": "quorum none\n \t log x\n"},
        {**TLOG, "policy": "#" * (64 * 1024) + "\n"},
        {**TLOG, "policy": ["quorum none\n"]},
        {**TLOG, "max_age": 3599},
        {**TLOG, "max_age": 31_622_401},
        {**TLOG, "max_age": "604800"},
        {**TLOG, "max_age": True},
    ],
)
def test_tlog_schema_is_strict(tlog: Any) -> None:
    with pytest.raises(FormatError) as info:
        Root.from_payload(_payload(tlog=tlog), step="12")
    assert (info.value.code, info.value.step) == ("bad-root", "12")


@pytest.mark.parametrize(
    "tlog",
    [
        {**TLOG, "max_age": 3600},
        {**TLOG, "max_age": 31_622_400},
        {**TLOG, "origin": "!~*,"},
        {**TLOG, "policy": "# log lines are refused, not comments about them\n\tquorum\tnone\n"},
        {**TLOG, "policy": "logs are fine\n"},  # the shape only: the grammar is LogTrust's
    ],
)
def test_tlog_edges_accepted(tlog: Any) -> None:
    assert Root.from_payload(_payload(tlog=tlog)).tlog == LogSettings(**tlog)


def test_log_settings_refuse_bad_values_when_built() -> None:
    with pytest.raises(FormatError):
        LogSettings("a b", "quorum none\n", 3600)


def test_log_purpose_and_log_keys() -> None:
    entry = {**V1["signing_keys"][0], "purposes": ["log"]}
    root = Root.from_payload(_payload(signing_keys=[entry]))
    assert root.log_keys() == {GOLDEN_SIGNING_KEY.keyid: GOLDEN_SIGNING_KEY.public}
    assert root.signing_keys_for("bundle") == {}
    revoked = [{"keyid": GOLDEN_SIGNING_KEY.keyid, "revoked_at": "2026-01-02T00:00:00Z", "reason": "x"}]
    assert Root.from_payload(_payload(signing_keys=[entry], revoked=revoked)).log_keys() == {}
    for purposes in (["log", "bundle"], ["bundle", "index", "log", "log"]):
        with pytest.raises(FormatError):
            Root.from_payload(_payload(signing_keys=[{**entry, "purposes": purposes}]))
    all_three = {**entry, "purposes": ["bundle", "index", "log"]}
    assert Root.from_payload(_payload(signing_keys=[all_three])).log_keys()


# -- key directory --------------------------------------------------------------------


@pytest.fixture
def kd(tmp_path: Path) -> KeyDir:
    keydir = KeyDir(tmp_path / "keys")
    keydir.init(PUBLISHER, seeds=SEEDS, now=T_INIT)
    return keydir


def test_init_makes_a_log_key_and_a_tlog_section(kd: KeyDir) -> None:
    root = kd.chain().newest
    root_key, online, log_key = (SigningKey.from_seed(s) for s in SEEDS)
    assert root.tlog == LogSettings(f"{root_key.keyid}/log", "quorum none\n", 604800)
    assert root.signing_keys[online.keyid].purposes == ("bundle", "index")
    assert root.signing_keys[log_key.keyid].purposes == ("log",)
    assert root.log_keys() == {log_key.keyid: log_key.public}
    assert kd.signer("log", at=T_INIT).keyid == log_key.keyid
    assert kd.signer("bundle", at=T_INIT).keyid == online.keyid
    trust = LogTrust.from_root(root)
    assert trust is not None and trust.origin == f"{root_key.keyid}/log" and trust.policy.quorum is None


def test_init_seeds_without_a_log_seed_stay_deterministic(tmp_path: Path) -> None:
    docs = []
    for name in ("a", "b"):
        keydir = KeyDir(tmp_path / name)
        keydir.init(PUBLISHER, seeds=SEEDS[:2], now=T_INIT)
        docs.append((keydir.path / "root.json").read_bytes())
    assert docs[0] == docs[1]
    assert len(_root_of(docs[0]).log_keys()) == 1


def test_init_without_log(tmp_path: Path) -> None:
    keydir = KeyDir(tmp_path / "k")
    root = keydir.init(PUBLISHER, seeds=SEEDS, now=T_INIT, log=False)
    assert root.tlog is None and root.log_keys() == {} and b'"tlog"' not in (keydir.path / "root.json").read_bytes()
    assert len(list((keydir.path / "signing").glob("*.pem"))) == 1
    with pytest.raises(UsageError) as info:
        keydir.set_log_policy("quorum none\n", now=T_ROTATE_SIGNING)
    assert info.value.code == "usage" and "rotate-signing --purpose log" in info.value.message
    # A log key later, then a policy: the section appears with the usual origin.
    with fixed_key_generation("late log"):
        keydir.rotate_signing(now=T_ROTATE_SIGNING, purposes=("log",))
    root = keydir.set_log_policy("quorum none\n", now=T_ROTATE_SIGNING + dt.timedelta(hours=1))
    assert root.version == 3 and root.tlog == LogSettings(f"{keydir.root_keyid()}/log", "quorum none\n", 604800)
    assert keydir.signer("bundle", at=T_ROTATE_SIGNING + dt.timedelta(days=1))  # the bundle key kept its window


def test_set_log_policy_writes_the_next_root(kd: KeyDir) -> None:
    policy = _witness_policy()
    root = kd.set_log_policy(policy, 7200, now=T_ROTATE_SIGNING, check=LogTrust.from_root)
    assert root.version == 2 and root.tlog is not None
    assert (root.tlog.policy, root.tlog.max_age) == (policy, 7200)
    assert kd.chain().newest == root
    assert kd.set_log_policy("quorum none\n", now=T_REVOKE).tlog == LogSettings(root.tlog.origin, "quorum none\n", 7200)
    trust = LogTrust.from_root(root)
    assert trust is not None and [w.name for w in trust.policy.witnesses] == ["a"]


@pytest.mark.parametrize(
    ("policy", "max_age", "kind"),
    [
        ("log x\nquorum none\n", None, UsageError),
        ("quorum none", None, UsageError),
        ("quorum none\n", 60, UsageError),
        ("quorum nobody\n", None, PolicyError),
        ("witness a not-a-vkey\nquorum a\n", None, PolicyError),
        ("", None, UsageError),
    ],
)
def test_set_log_policy_refuses_before_writing(kd: KeyDir, policy: str, max_age: int | None, kind: type) -> None:
    before = sorted(p.name for p in (kd.path / "roots").iterdir())
    with pytest.raises(kind):
        kd.set_log_policy(policy, max_age, now=T_ROTATE_SIGNING, check=LogTrust.from_root)
    assert sorted(p.name for p in (kd.path / "roots").iterdir()) == before


def test_rotating_one_purpose_keeps_the_other_keys(kd: KeyDir) -> None:
    _, online, log_key = (SigningKey.from_seed(s) for s in SEEDS)
    later = T_ROTATE_SIGNING + dt.timedelta(days=1)
    with fixed_key_generation("rotate log"):
        root, new_log = kd.rotate_signing(now=T_ROTATE_SIGNING, purposes=("log",))
    assert root.signing_keys[new_log.keyid].purposes == ("log",)
    assert root.signing_keys[log_key.keyid].not_after == T_ROTATE_SIGNING
    assert root.signing_keys[online.keyid].not_after > later  # untouched
    assert kd.signer("log", at=later).keyid == new_log.keyid
    assert set(root.log_keys()) == {log_key.keyid, new_log.keyid}  # both verify until one is revoked
    with fixed_key_generation("rotate bundle"):
        root, new_online = kd.rotate_signing(now=T_REVOKE)
    assert root.signing_keys[new_online.keyid].purposes == ("bundle", "index")
    assert root.signing_keys[new_log.keyid].not_after > later
    assert kd.signer("log", at=T_REVOKE + dt.timedelta(days=1)).keyid == new_log.keyid
    root = kd.revoke(log_key.keyid, "old log key retired", now=T_REVOKE + dt.timedelta(hours=1))
    assert set(root.log_keys()) == {new_log.keyid}
    with pytest.raises(UsageError):
        kd.rotate_signing(now=T_REVOKE, purposes=("publish",))


def test_root_rotation_keeps_the_log_origin(kd: KeyDir) -> None:
    origin = kd.chain().newest.tlog
    with fixed_key_generation("rotate root"):
        root = kd.rotate_root(now=T_ROTATE_SIGNING)
    assert root.tlog == origin and GOLDEN_ROOT_KEYID not in root.root_keys
    docs = kd.root_documents()
    pinned = sorted(_root_of(docs[0]).root_keys)[0]
    assert verify_root_chain(docs, pinned_keyid=pinned).newest.tlog == origin


# -- keys commands --------------------------------------------------------------------


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def test_cli_init_show_log_policy_and_rotate_log(tmp_path: Path, clean_env: None) -> None:
    d = tmp_path / "keys"
    init = json.loads(_run("keys", "init", "--dir", d, "--publisher", "Log News", "--json").stdout)
    tlog = init["tlog"]
    assert tlog["origin"] == f"{init['root_keyid']}/log" and len(tlog["log_keys"]) == 1
    text = _run("keys", "show", "--dir", d).stdout
    assert f"log origin:  {tlog['origin']}" in text and tlog["log_keys"][0] in text and "  quorum none" in text

    policy = tmp_path / "policy.txt"
    policy.write_text(_witness_policy())
    out = _run("keys", "log-policy", "--dir", d, "--policy", policy, "--max-age", "86400", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["root_version"] == 2 and data["tlog"]["policy"] == policy.read_text()
    assert data["tlog"]["max_age"] == 86400
    assert "witness a " in _run("keys", "show", "--dir", d).stdout

    rotated = _run("keys", "rotate-signing", "--dir", d, "--purpose", "log", "--json")
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert new["root_version"] == 3 and new["new_keyid"] in new["tlog"]["log_keys"]
    assert {k["keyid"]: k["purposes"] for k in new["signing_keys"]}[new["new_keyid"]] == ["log"]


@pytest.mark.parametrize(
    ("content", "extra", "needle"),
    [
        (b"log x+01234567+AAAA\nquorum none\n", (), "log line"),
        (b"quorum nobody\n", (), "policy line 1"),
        (b"witness a x\nquorum a\n", (), "policy line 1"),
        (b"quorum none", (), "ending with a newline"),
        (b"quorum none\r\n", (), "printable ASCII"),
        ("witness caf\u00e9 x\nquorum none\n".encode(), (), "not ASCII"),
        (b"#" * (64 * 1024 + 1), (), "64 KiB"),
    ],
)
def test_cli_log_policy_errors_are_one_line(
    tmp_path: Path, clean_env: None, content: bytes, extra: tuple[str, ...], needle: str
) -> None:
    d = tmp_path / "keys"
    assert _run("keys", "init", "--dir", d, "--publisher", "Log News").exit_code == 0
    policy = tmp_path / "policy.txt"
    policy.write_bytes(content)
    line = _one_line_error(_run("keys", "log-policy", "--dir", d, "--policy", policy, *extra))
    assert needle in line
    assert sorted(p.name for p in (d / "roots").iterdir()) == ["1.json"]


def test_cli_log_policy_max_age_range_and_no_log(tmp_path: Path, clean_env: None) -> None:
    d = tmp_path / "keys"
    assert _run("keys", "init", "--dir", d, "--publisher", "No Log", "--no-log").exit_code == 0
    assert "log:         none" in _run("keys", "show", "--dir", d).stdout
    policy = tmp_path / "policy.txt"
    policy.write_text("quorum none\n")
    assert _run("keys", "log-policy", "--dir", d, "--policy", policy, "--max-age", "10").exit_code == 2
    assert "rotate-signing --purpose log" in _one_line_error(_run("keys", "log-policy", "--dir", d, "--policy", policy))
