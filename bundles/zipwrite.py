"""Write the canonical, deterministic ZIP form (docs/format.md, "ZIP form").

Sorted entries, fixed time (1980-01-01 00:00), mode 0644 regular files, no
extra fields or comments; text deflated at level 6, already-compressed media
stored. Same inputs, same bytes.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path

from tamizdat.fsutil import atomic_file

from .zipstrict import EXTERNAL_ATTR

DEFLATE_LEVEL = 6
STORED_EXTENSIONS = (".jpg", ".png", ".webp")

Content = bytes | Path


def _info(name: str, stored: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.create_version = 20
    info.extract_version = 20
    info.external_attr = EXTERNAL_ATTR
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    return info


def write_zip(out: Path, files: Mapping[str, Content], *, durable: bool = True) -> None:
    """Write ``files`` (name -> bytes or a file to stream) as a canonical ZIP at ``out``."""
    with atomic_file(out, 0o644, durable=durable) as fh, zipfile.ZipFile(fh, "w", compresslevel=DEFLATE_LEVEL) as zf:
        for name in sorted(files):
            content = files[name]
            stored = name.endswith(STORED_EXTENSIONS)
            info = _info(name, stored)
            if isinstance(content, bytes):
                zf.writestr(info, content, compresslevel=None if stored else DEFLATE_LEVEL)
            else:
                info.file_size = content.stat().st_size
                with content.open("rb") as src, zf.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
