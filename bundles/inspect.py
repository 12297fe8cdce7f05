"""List what a bundle holds without trusting it (nothing is verified or extracted)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

from tamizdat.errors import FormatError, TamizdatError
from tamizdat.keys import strictjson
from tamizdat.keys.dsse import BUNDLE_TYPE, Envelope

from .manifest import MANIFEST_NAME, bundle_id


def inspect_bundle(path: Path) -> dict[str, Any]:
    """Entries from the central directory and the (unverified) manifest, if readable."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError) as exc:
        raise FormatError(f"not a readable ZIP archive: {exc}", code="zip-unreadable") from exc
    with zf:
        entries = [
            {
                "name": i.filename,
                "size": i.file_size,
                "compressed_size": i.compress_size,
                "method": {0: "stored", 8: "deflated"}.get(i.compress_type, str(i.compress_type)),
                "encrypted": bool(i.flag_bits & 1),
            }
            for i in zf.infolist()
        ]
        out: dict[str, Any] = {"verified": False, "entries": entries, "manifest": None}
        try:
            info = zf.getinfo(MANIFEST_NAME)
            if info.file_size <= 1024 * 1024 and info.compress_size <= 1024 * 1024:
                env = Envelope.from_bytes(zf.read(info), expected_type=BUNDLE_TYPE)
                out["manifest"] = strictjson.loads(env.payload)
                out["bundle_id"] = bundle_id(env.payload)
                out["signatures"] = [s.keyid for s in env.signatures]
        # zipfile also raises zlib.error (corrupt deflate data), RuntimeError (an encrypted
        # entry) and NotImplementedError (an unknown method): all mean an unreadable manifest.
        except (
            KeyError,
            TamizdatError,
            zipfile.BadZipFile,
            ValueError,
            OSError,
            zlib.error,
            RuntimeError,
            NotImplementedError,
            EOFError,
        ) as exc:
            out["manifest_error"] = str(exc)
    return out
