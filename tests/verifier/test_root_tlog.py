"""The root's optional ``tlog`` section and the ``log`` purpose: the page parses them as Python does.

Each case rewrites root version 1 of the article base bundle (re-signed by its
root key, so only the schema decides) and asks both verifiers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import VerifierPage
from .corpus import ROOT_TYPE, Base, _root_doc, envelope, files_of, python_verdict, repack

VALID = ("valid", None, None)
BAD_ROOT = ("invalid", 12, "bad-root")
POLICY = "witness m0 mirror.example+01234567+AAAA\nquorum m0\n"  # shape only: the grammar is not step 12's


def _tlog(doc: dict[str, Any], **changes: Any) -> None:
    doc["tlog"] = {**doc["tlog"], **changes}


def _set(key: str, value: Any) -> Any:
    return lambda doc: doc.update({key: value})


CASES: list[tuple[str, Any, tuple[str, int | None, str | None]]] = [
    ("as-built", lambda doc: None, VALID),
    ("no-tlog", lambda doc: doc.pop("tlog"), VALID),
    ("max-age-low-edge", lambda doc: _tlog(doc, max_age=3600), VALID),
    ("max-age-high-edge", lambda doc: _tlog(doc, max_age=31_622_400), VALID),
    ("policy-with-witness", lambda doc: _tlog(doc, policy=POLICY), VALID),
    ("policy-tabs-comments", lambda doc: _tlog(doc, policy="# log is a word\n\tquorum\tnone\n"), VALID),
    ("origin-punctuation", lambda doc: _tlog(doc, origin="!~*,/log"), VALID),
    ("tlog-not-object", _set("tlog", "quorum none\n"), BAD_ROOT),
    ("tlog-null", _set("tlog", None), BAD_ROOT),
    ("tlog-extra", lambda doc: _tlog(doc, extra=1), BAD_ROOT),
    ("tlog-missing-field", lambda doc: doc["tlog"].pop("max_age"), BAD_ROOT),
    ("origin-empty", lambda doc: _tlog(doc, origin=""), BAD_ROOT),
    ("origin-space", lambda doc: _tlog(doc, origin="a b"), BAD_ROOT),
    ("origin-plus", lambda doc: _tlog(doc, origin="a+b"), BAD_ROOT),
    ("origin-non-ascii", lambda doc: _tlog(doc, origin="caf\u00e9/log"), BAD_ROOT),
    ("origin-256", lambda doc: _tlog(doc, origin="x" * 256), BAD_ROOT),
    ("origin-number", lambda doc: _tlog(doc, origin=5), BAD_ROOT),
    ("policy-no-newline", lambda doc: _tlog(doc, policy="quorum none"), BAD_ROOT),
    ("policy-crlf", lambda doc: _tlog(doc, policy="quorum none\r\n"), BAD_ROOT),
    ("policy-non-ascii", lambda doc: _tlog(doc, policy="witness \u0436 x\nquorum none\n"), BAD_ROOT),
    ("policy-log-line", lambda doc: _tlog(doc, policy="  log x+01234567+AAAA\nquorum none\n"), BAD_ROOT),
    ("policy-64k", lambda doc: _tlog(doc, policy="#" * 65536 + "\n"), BAD_ROOT),
    ("policy-list", lambda doc: _tlog(doc, policy=["quorum none\n"]), BAD_ROOT),
    ("max-age-low", lambda doc: _tlog(doc, max_age=3599), BAD_ROOT),
    ("max-age-high", lambda doc: _tlog(doc, max_age=31_622_401), BAD_ROOT),
    ("max-age-string", lambda doc: _tlog(doc, max_age="3600"), BAD_ROOT),
    ("max-age-bool", lambda doc: _tlog(doc, max_age=True), BAD_ROOT),
    ("purposes-all-three", lambda doc: _purposes(doc, ["bundle", "index", "log"]), VALID),
    ("purposes-unsorted", lambda doc: _purposes(doc, ["log", "bundle"]), BAD_ROOT),
    ("purposes-four", lambda doc: _purposes(doc, ["bundle", "index", "log", "log"]), BAD_ROOT),
    ("purposes-unknown", lambda doc: _purposes(doc, ["bundle", "witness"]), BAD_ROOT),
]


def _purposes(doc: dict[str, Any], purposes: list[str]) -> None:
    """Give the log key (the one delegated for log only) other purposes."""
    (log_key,) = [k for k in doc["signing_keys"] if k["purposes"] == ["log"]]
    log_key["purposes"] = purposes


@pytest.mark.parametrize(("name", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_root_tlog_agrees(
    verifier: VerifierPage,
    bases: dict[str, Base],
    tmp_path: Path,
    name: str,
    change: Any,
    expected: tuple[str, int | None, str | None],
) -> None:
    base = bases["article"]
    files = files_of(base.data)
    payload, _ = _root_doc(files, 1)
    doc = json.loads(payload)
    assert "tlog" in doc  # the corpus keys are made with a log key and a tlog section
    change(doc)
    new = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    path = tmp_path / f"{name}.zip"
    path.write_bytes(repack(b"", {**files, b"meta/roots/1.json": envelope(ROOT_TYPE, new, base.root_signers[1])}))
    assert python_verdict(path, base.root_keyid) == expected
    assert verifier.verdict(path, base.root_keyid) == expected
