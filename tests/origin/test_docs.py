"""The origin's docs cover every origin setting and every API route."""

from __future__ import annotations

from pathlib import Path

from tamizdat.server.openapi import openapi_document
from tamizdat.server.settings import SETTINGS

DOCS = Path(__file__).resolve().parents[2] / "docs"
GENERAL = {"role", "listen", "access_log"}


def test_operator_doc_lists_origin_settings_with_help() -> None:
    text = (DOCS / "operator-origin.md").read_text()
    for s in SETTINGS:
        if s.help.startswith("Origin:") or s.name in GENERAL:
            assert f"`{s.name}`" in text and s.help in text, s.name


def test_api_doc_lists_every_route() -> None:
    text = (DOCS / "api.md").read_text()
    for path, item in openapi_document()["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "delete"):
                assert path in text, path
                assert method.upper() in text
    for code in ("unauthorized", "invalid-token", "token-revoked", "too-large", "unsupported-media-type"):
        assert f"`{code}`" in text
