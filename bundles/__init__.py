"""The bundle format: build, open strictly, verify. No network here.

The names below load their module on first use (PEP 562), so importing one
submodule (a mirror's verifier process imports only what verifying needs)
does not pull in the builder's Markdown and template machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .build import BuiltBundle, build_bundle
    from .content import BundleInput, parse_bundle_input
    from .manifest import Manifest, bundle_id
    from .verify import VerifiedBundle, verify_bundle

_WHERE = {
    "BuiltBundle": "build",
    "build_bundle": "build",
    "BundleInput": "content",
    "parse_bundle_input": "content",
    "Manifest": "manifest",
    "bundle_id": "manifest",
    "VerifiedBundle": "verify",
    "verify_bundle": "verify",
}

__all__ = [
    "BuiltBundle",
    "BundleInput",
    "Manifest",
    "VerifiedBundle",
    "build_bundle",
    "bundle_id",
    "parse_bundle_input",
    "verify_bundle",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
