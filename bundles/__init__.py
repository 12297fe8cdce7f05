"""The bundle format: build, open strictly, verify. No network here."""

from .build import BuiltBundle, build_bundle
from .content import BundleInput, parse_bundle_input
from .manifest import Manifest, bundle_id
from .verify import VerifiedBundle, verify_bundle

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
