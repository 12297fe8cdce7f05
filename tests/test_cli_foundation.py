"""The foundation CLI: keys, bundle build/inspect, verify. JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import (
    BAD,
    GOLDEN,
    GOLDEN_ROOT_KEYID,
    GOLDEN_SIGNING_KEY,
    MANIFEST,
    find,
    golden_keydir,
    read_zip,
    with_entry,
    write_zip,
)

from tamizdat.cli import main

ARTICLE = GOLDEN / "article-en.zip"
BAD_NAMES = sorted(p.name for p in BAD.glob("*.zip"))
SUMMARY_FIELDS = {
    "ok",
    "publisher",
    "root_keyid",
    "root_version",
    "root_keys",
    "threshold",
    "expires",
    "signing_keys",
    "tlog",
}
VERIFY_FIELDS = {
    "ok",
    "bundle_id",
    "publisher",
    "root_keyid",
    "root_version",
    "created",
    "kind",
    "signing_keyid",
    "size",
    "articles",
    "notices",
    "supersedes",
    "log",
}


@pytest.fixture
def run(clean_env: None) -> Any:
    def invoke(*args: str | Path) -> Result:
        return CliRunner().invoke(main, [str(a) for a in args])

    return invoke


def ok_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    assert result.exception is None
    data = json.loads(result.stdout)
    assert isinstance(data, dict) and data.get("ok", True) is True
    return data


def one_line_error(result: Result, code: str | None = None, *, as_json: bool = False) -> dict[str, Any] | None:
    """Exit 1, a single ``error: ...`` line on stderr, no traceback (and the JSON error object)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    if not as_json:
        return None
    (line,) = result.stdout.splitlines()
    report = json.loads(line)
    assert report["ok"] is False and set(report["error"]) >= {"code", "message"}
    if code is not None:
        assert report["error"]["code"] == code
    return report


def usage_error(result: Result) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Usage:" in result.stderr or "Error:" in result.stderr


# -- keys -----------------------------------------------------------------------------


def test_keys_init_show_rotate_revoke_rotate_root(run: Any, tmp_path: Path) -> None:
    d = tmp_path / "keys"
    init = ok_json(run("keys", "init", "--dir", d, "--publisher", "CLI News", "--json"))
    assert set(init) == SUMMARY_FIELDS
    assert init["root_version"] == 1 and init["publisher"] == "CLI News" and init["threshold"] == 1
    assert init["root_keys"] == [init["root_keyid"]]
    signing, log_key = sorted(init["signing_keys"], key=lambda k: k["purposes"])
    assert set(signing) == {"keyid", "public", "purposes", "not_before", "not_after", "revoked"}
    assert signing["purposes"] == ["bundle", "index"] and signing["revoked"] is False
    assert log_key["purposes"] == ["log"] and init["tlog"]["log_keys"] == [log_key["keyid"]]
    assert init["tlog"]["origin"] == f"{init['root_keyid']}/log" and init["tlog"]["policy"] == "quorum none\n"
    for pem in (*(d / "root-private").glob("*.pem"), *(d / "signing").glob("*.pem")):
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600

    show = ok_json(run("keys", "show", "--dir", d, "--json"))
    assert show == init
    text = run("keys", "show", "--dir", d)
    assert text.exit_code == 0 and init["root_keyid"] in text.stdout and "active" in text.stdout

    rotated = ok_json(run("keys", "rotate-signing", "--dir", d, "--json"))
    assert rotated["root_version"] == 2 and rotated["root_keyid"] == init["root_keyid"]
    assert rotated["new_keyid"] in {k["keyid"] for k in rotated["signing_keys"]}

    revoked = ok_json(run("keys", "revoke", signing["keyid"], "--dir", d, "--reason", "laptop stolen", "--json"))
    assert revoked["root_version"] == 3
    assert {k["keyid"]: k["revoked"] for k in revoked["signing_keys"]}[signing["keyid"]] is True

    new_root = ok_json(run("keys", "rotate-root", "--dir", d, "--json"))
    assert new_root["root_version"] == 4 and init["root_keyid"] not in new_root["root_keys"]
    assert new_root["root_keyid"] == init["root_keyid"]  # readers keep the pinned id

    from tamizdat.keys.root import verify_root_chain

    docs = [(d / "roots" / f"{v}.json").read_bytes() for v in range(1, 5)]
    assert verify_root_chain(docs, pinned_keyid=init["root_keyid"]).newest.version == 4


def test_keys_init_text_prints_the_root_key_id(run: Any, tmp_path: Path) -> None:
    result = run("keys", "init", "--dir", tmp_path / "k", "--publisher", "CLI News")
    assert result.exit_code == 0
    assert result.stdout.startswith("root key id: ") and "offline" in result.stdout


def test_keys_init_refuses_to_overwrite(run: Any, tmp_path: Path) -> None:
    d = tmp_path / "keys"
    ok_json(run("keys", "init", "--dir", d, "--publisher", "CLI News", "--json"))
    before = (d / "root.json").read_bytes()
    report = one_line_error(run("keys", "init", "--dir", d, "--publisher", "X", "--json"), "key-exists", as_json=True)
    assert report is not None
    one_line_error(run("keys", "init", "--dir", d, "--publisher", "X"))
    assert (d / "root.json").read_bytes() == before


def test_keys_init_encrypted_with_passphrase_file(run: Any, tmp_path: Path) -> None:
    d = tmp_path / "keys"
    good, wrong = tmp_path / "pass.txt", tmp_path / "wrong.txt"
    good.write_text("correct horse battery\n")
    wrong.write_text("incorrect\n")
    init = ok_json(
        run("keys", "init", "--dir", d, "--publisher", "P", "--encrypt", "--passphrase-file", good, "--json")
    )
    (pem,) = (d / "root-private").glob("*.pem")
    assert b"ENCRYPTED PRIVATE KEY" in pem.read_bytes()
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    # Wrong passphrase: a clean one-line error, exit 1, nothing written.
    one_line_error(run("keys", "rotate-signing", "--dir", d, "--passphrase-file", wrong), "bad-private-key")
    report = one_line_error(
        run("keys", "rotate-signing", "--dir", d, "--passphrase-file", wrong, "--json"), "bad-private-key", as_json=True
    )
    assert report is not None and "passphrase" in report["error"]["message"]
    one_line_error(run("keys", "rotate-signing", "--dir", d, "--json"), "passphrase-needed", as_json=True)
    assert sorted(p.name for p in (d / "roots").iterdir()) == ["1.json"]
    assert len(list((d / "signing").glob("*.pem"))) == 2  # the bundle+index key and the log key
    # Right passphrase: works.
    rotated = ok_json(run("keys", "rotate-signing", "--dir", d, "--passphrase-file", good, "--json"))
    assert rotated["root_version"] == 2 and rotated["root_keyid"] == init["root_keyid"]


def test_keys_passphrase_from_the_environment(tmp_path: Path, clean_env: None) -> None:
    d = tmp_path / "keys"
    env = {"TAMIZDAT_ROOT_PASSPHRASE": "from env"}
    runner = CliRunner()
    assert (
        runner.invoke(main, ["keys", "init", "--dir", str(d), "--publisher", "P", "--encrypt"], env=env).exit_code == 0
    )
    assert runner.invoke(main, ["keys", "rotate-signing", "--dir", str(d)], env=env).exit_code == 0
    bad = runner.invoke(main, ["keys", "rotate-signing", "--dir", str(d)], env={"TAMIZDAT_ROOT_PASSPHRASE": "nope"})
    one_line_error(bad)


def test_keys_usage_errors_exit_2(run: Any, tmp_path: Path) -> None:
    usage_error(run("keys", "init", "--dir", tmp_path / "k"))  # no --publisher
    usage_error(run("keys", "init", "--dir", tmp_path / "k", "--publisher", "P", "--encrypt"))  # no passphrase
    usage_error(run("keys", "init", "--dir", tmp_path / "k", "--publisher", "P", "--threshold", "0"))
    usage_error(run("keys", "revoke", "--dir", tmp_path / "k"))  # no KEYID, no --reason
    usage_error(run("keys", "frobnicate"))
    assert not (tmp_path / "k").exists()


def test_keys_errors_on_a_missing_directory(run: Any, tmp_path: Path) -> None:
    one_line_error(run("keys", "show", "--dir", tmp_path / "nothing", "--json"), "no-keys", as_json=True)
    one_line_error(run("keys", "rotate-signing", "--dir", tmp_path / "nothing"))


def test_keys_revoke_refusals_are_one_line(run: Any, tmp_path: Path) -> None:
    golden_keydir(tmp_path / "keys")
    d = tmp_path / "keys"
    one_line_error(run("keys", "revoke", GOLDEN_ROOT_KEYID, "--dir", d, "--reason", "x"))
    one_line_error(run("keys", "revoke", "ab" * 32, "--dir", d, "--reason", "x", "--json"), "usage", as_json=True)


# -- verify ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["article-en.zip", "edition-multilang.zip", "rotated.zip"])
def test_verify_golden_json(run: Any, name: str) -> None:
    data = ok_json(run("verify", GOLDEN / name, "--root-key", GOLDEN_ROOT_KEYID, "--json"))
    assert set(data) == VERIFY_FIELDS
    assert data["root_keyid"] == GOLDEN_ROOT_KEYID and data["publisher"] == "Example Newsroom"
    assert data["bundle_id"] == json.loads((GOLDEN / "bundle_ids.json").read_text())[name]
    assert data["size"] == (GOLDEN / name).stat().st_size
    for article in data["articles"]:
        assert set(article) == {"id", "version", "lang", "title"}


def test_verify_golden_text(run: Any) -> None:
    result = run("verify", ARTICLE, "--root-key", GOLDEN_ROOT_KEYID)
    assert result.exit_code == 0
    assert result.stdout.startswith("VALID: signed by Example Newsroom")
    assert GOLDEN_SIGNING_KEY.keyid in result.stdout and "court-2026" in result.stdout


def test_verify_with_a_trusted_root_file(run: Any) -> None:
    for version in (1, 2):
        root = GOLDEN / "keys" / "roots" / f"{version}.json"
        assert ok_json(run("verify", ARTICLE, "--root", root, "--json"))["root_version"] == version


def test_verify_revoked_with_newer_root_json(run: Any, tmp_path: Path) -> None:
    keydir = golden_keydir(tmp_path / "keys")
    from helpers import T_REVOKE

    keydir.revoke(GOLDEN_SIGNING_KEY.keyid, "key leaked", now=T_REVOKE)
    result = run("verify", ARTICLE, "--root", keydir.path / "root.json", "--json")
    report = one_line_error(result, "key-revoked", as_json=True)
    assert report is not None and report["error"]["step"] == "19"
    assert "key leaked" in result.stderr


def test_verify_text_error_is_one_line(run: Any) -> None:
    result = run("verify", BAD / "zip-bomb.zip", "--root-key", GOLDEN_ROOT_KEYID)
    one_line_error(result)
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        [],  # neither --root-key nor --root
        ["--root-key", GOLDEN_ROOT_KEYID, "--root", str(GOLDEN / "keys" / "root.json")],
        ["--root-key", "not-hex"],
        ["--root-key", GOLDEN_ROOT_KEYID.upper()[:-1]],
        ["--root", "/nonexistent/root.json"],
    ],
    ids=["no-anchor", "both-anchors", "bad-id", "short-id", "missing-root-file"],
)
def test_verify_usage_errors_exit_2(run: Any, args: list[str]) -> None:
    usage_error(run("verify", ARTICLE, *args, "--json"))


def test_verify_missing_bundle_exits_2(run: Any, tmp_path: Path) -> None:
    usage_error(run("verify", tmp_path / "missing.zip", "--root-key", GOLDEN_ROOT_KEYID))


def test_verify_unreadable_trusted_root_is_rejected(run: Any, tmp_path: Path) -> None:
    junk = tmp_path / "root.json"
    junk.write_bytes(b"{not json")
    one_line_error(run("verify", ARTICLE, "--root", junk, "--json"), "json-syntax", as_json=True)


# -- bundle inspect / build -----------------------------------------------------------------


def test_inspect_golden(run: Any) -> None:
    result = run("bundle", "inspect", ARTICLE)
    assert result.exit_code == 0
    assert result.stdout.startswith("UNVERIFIED")
    data = ok_json(run("bundle", "inspect", ARTICLE, "--json"))
    assert data["verified"] is False
    assert data["bundle_id"] == json.loads((GOLDEN / "bundle_ids.json").read_text())["article-en.zip"]
    assert [e["name"] for e in data["entries"]][:2] == ["articles/1.html", "articles/1.json"]


@pytest.mark.parametrize("name", ["signature-flipped.zip", "key-revoked.zip", "zip-bomb.zip", "encrypted.zip"])
def test_inspect_a_bad_bundle_says_unverified(run: Any, name: str) -> None:
    result = run("bundle", "inspect", BAD / name)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("UNVERIFIED")
    assert ok_json(run("bundle", "inspect", BAD / name, "--json"))["verified"] is False


def _unreadable_manifests(tmp_path: Path) -> list[Path]:
    entries = read_zip(ARTICLE.read_bytes())
    manifest = entries[find(entries, MANIFEST)]
    out = []
    for label, change in (
        ("encrypted", {"flags": 1}),
        ("method-99", {"method": 99}),
        ("corrupt", {"data": manifest.data[:10] + bytes([manifest.data[10] ^ 0x55]) + manifest.data[11:]}),
    ):
        path = tmp_path / f"{label}.zip"
        path.write_bytes(write_zip(with_entry(entries, MANIFEST, **change)))
        out.append(path)
    return out


@pytest.mark.parametrize("name", BAD_NAMES)
def test_inspect_never_crashes_on_bad_bundles(run: Any, name: str) -> None:
    for as_json in ((), ("--json",)):
        result = run("bundle", "inspect", BAD / name, *as_json)
        assert "Traceback" not in result.output
        assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
        if result.exit_code == 0:
            assert "UNVERIFIED" in result.stdout or json.loads(result.stdout)["verified"] is False
        else:
            one_line_error(result, as_json=bool(as_json))


def test_inspect_survives_manifests_zipfile_cannot_read(run: Any, tmp_path: Path) -> None:
    for path in _unreadable_manifests(tmp_path):
        result = run("bundle", "inspect", path)
        assert result.exit_code == 0, (path.name, repr(result.exception))
        assert "UNVERIFIED" in result.stdout and "manifest unreadable" in result.stdout


def test_bundle_build_bad_input_is_one_line(run: Any, tmp_path: Path) -> None:
    golden_keydir(tmp_path / "keys")
    src = tmp_path / "in.json"
    src.write_text(json.dumps({"articles": [{"id": "x", "lang": "en", "title": "t", "body": "b"}]}))
    one_line_error(run("bundle", "build", src, "--keys", tmp_path / "keys", "-o", tmp_path / "o.zip", "--json"))
    src.write_text('{"articles": [], "articles": []}')
    one_line_error(
        run("bundle", "build", src, "--keys", tmp_path / "keys", "-o", tmp_path / "o.zip", "--json"),
        "json-duplicate-key",
        as_json=True,
    )
    src.write_text(
        json.dumps(
            {
                "articles": [
                    {
                        "id": "x",
                        "lang": "en",
                        "title": "t",
                        "body": "b",
                        "published": "2026-02-01T00:00:00Z",
                        "images": [{"path": "nope.png"}],
                    }
                ]
            }
        )
    )
    one_line_error(run("bundle", "build", src, "--keys", tmp_path / "keys", "-o", tmp_path / "o.zip"))
    assert not (tmp_path / "o.zip").exists()


def test_bundle_build_then_verify(run: Any, tmp_path: Path) -> None:
    golden_keydir(tmp_path / "keys")
    src = tmp_path / "in.json"
    src.write_text(
        json.dumps(
            {
                "articles": [
                    {
                        "id": "x",
                        "lang": "uk",
                        "title": "Заголовок",
                        "body": "Текст.",
                        "published": "2026-02-01T00:00:00Z",
                    }
                ]
            }
        )
    )
    out = tmp_path / "o.zip"
    built = ok_json(run("bundle", "build", src, "--keys", tmp_path / "keys", "-o", out, "--json"))
    assert set(built) == {"ok", "bundle_id", "path", "size", "sha256", "created", "articles", "signing_keyid"}
    assert built["created"] == "2026-02-01T00:00:00Z"  # reproducible default: the article's time
    verified = ok_json(run("verify", out, "--root-key", GOLDEN_ROOT_KEYID, "--json"))
    assert verified["bundle_id"] == built["bundle_id"]
    one_line_error(run("bundle", "build", src, "--keys", tmp_path / "keys", "-o", out, "--created", "yesterday"))


# -- a real process -----------------------------------------------------------------------------


def _tamizdat(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMIZDAT_")}
    cmd = [sys.executable, "-c", "from tamizdat.cli import main; main()", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_real_process_exit_codes_and_streams() -> None:
    good = _tamizdat("verify", ARTICLE, "--root-key", GOLDEN_ROOT_KEYID, "--json")
    assert good.returncode == 0 and json.loads(good.stdout)["ok"] is True and good.stderr == ""
    bad = _tamizdat("verify", BAD / "symlink.zip", "--root-key", GOLDEN_ROOT_KEYID, "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout) == {
        "ok": False,
        "error": {"code": "zip-symlink", "step": "6", "message": "archive has a symbolic link"},
    }
    assert bad.stderr == "error: archive has a symbolic link\n"
    usage = _tamizdat("verify", ARTICLE)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
