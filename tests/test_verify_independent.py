"""Independent checks of the golden bundles with other tools: OpenSSL and Info-ZIP.

The PAE bytes are written here from the DSSE spec, not with tamizdat.keys.dsse.
Without the tools these tests skip, except under CI (environment variable CI),
where they fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from helpers import BAD, GOLDEN, GOLDEN_NAMES, MANIFEST, contents, require_tool, spki_pem

ROOT_TYPE = "application/vnd.tamizdat.root+json"


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """PAE per https://github.com/secure-systems-lab/dsse/blob/master/protocol.md."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 " + b"%d " % len(type_bytes) + type_bytes + b" " + b"%d " % len(payload) + payload


def _openssl_verify(
    tmp: Path, raw_public: bytes, message: bytes, signature: bytes
) -> subprocess.CompletedProcess[bytes]:
    openssl = require_tool("openssl")
    (tmp / "PUB.pem").write_bytes(spki_pem(raw_public))
    (tmp / "PAE.bin").write_bytes(message)
    (tmp / "SIG.bin").write_bytes(signature)
    cmd = [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", "PUB.pem", "-rawin", "-in", "PAE.bin"]
    return subprocess.run([*cmd, "-sigfile", "SIG.bin"], cwd=tmp, capture_output=True, timeout=30, check=False)


def _payload(envelope: bytes) -> tuple[dict[str, object], bytes]:
    env = json.loads(envelope)
    return env, base64.b64decode(env["payload"], validate=True)


def test_pae_helper_matches_the_spec_example() -> None:
    assert dsse_pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_manifest_signature_verifies_with_openssl(name: str, tmp_path: Path) -> None:
    files = contents((GOLDEN / name).read_bytes())
    env, payload = _payload(files[MANIFEST])
    newest = max(int(n.rsplit("/", 1)[1].split(".")[0]) for n in files if n.startswith("meta/roots/"))
    _, root_payload = _payload(files[f"meta/roots/{newest}.json"])
    root = json.loads(root_payload)
    keys = {k["keyid"]: base64.b64decode(k["public"]) for k in root["signing_keys"]}
    message = dsse_pae(env["payloadType"], payload)  # type: ignore[arg-type]
    assert env["payloadType"] == "application/vnd.tamizdat.bundle+json"
    signatures = env["signatures"]
    assert isinstance(signatures, list) and signatures
    for sig in signatures:
        raw = keys[sig["keyid"]]
        assert hashlib.sha256(raw).hexdigest() == sig["keyid"]
        signature = base64.b64decode(sig["sig"])
        ok = _openssl_verify(tmp_path, raw, message, signature)
        assert ok.returncode == 0, ok.stderr.decode()
        assert b"Signature Verified Successfully" in ok.stdout
        # Negative control: one flipped bit of the PAE bytes fails in OpenSSL too.
        bad = _openssl_verify(tmp_path, raw, message[:-1] + bytes([message[-1] ^ 1]), signature)
        assert bad.returncode != 0


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_root_signatures_verify_with_openssl(name: str, tmp_path: Path) -> None:
    """Each carried root is signed by its own root keys and, from version 2, by the previous ones."""
    files = contents((GOLDEN / name).read_bytes())
    versions = sorted(int(n.rsplit("/", 1)[1].split(".")[0]) for n in files if n.startswith("meta/roots/"))
    previous: dict[str, bytes] = {}
    for version in versions:
        env, payload = _payload(files[f"meta/roots/{version}.json"])
        root = json.loads(payload)
        assert root["version"] == version
        own = {k["keyid"]: base64.b64decode(k["public"]) for k in root["root_keys"]}
        message = dsse_pae(ROOT_TYPE, payload)
        verified = set()
        for sig in env["signatures"]:  # type: ignore[attr-defined]
            raw = {**previous, **own}[sig["keyid"]]
            result = _openssl_verify(tmp_path, raw, message, base64.b64decode(sig["sig"]))
            assert result.returncode == 0, result.stderr.decode()
            verified.add(sig["keyid"])
        assert verified & set(own)
        assert not previous or verified & set(previous)
        previous = own


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_bundle_passes_unzip_t(name: str) -> None:
    unzip = require_tool("unzip")
    result = subprocess.run([unzip, "-t", str(GOLDEN / name)], capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"No errors detected" in result.stdout


def test_unzip_t_sees_the_corrupt_article_too() -> None:
    """Negative control: Info-ZIP also reports the flipped article byte."""
    unzip = require_tool("unzip")
    result = subprocess.run(
        [unzip, "-t", str(BAD / "article-byte-flipped.zip")], capture_output=True, timeout=30, check=False
    )
    assert result.returncode != 0


def test_a_missing_tool_fails_under_ci_and_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require_tool("openssl")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_tool("openssl")
