"""Images: decoded, checked and re-encoded so no metadata (EXIF, XMP, GPS) survives."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from tamizdat.errors import FormatError, UsageError

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    ext: str
    media_type: str
    width: int
    height: int

    @property
    def name(self) -> str:
        """Entry name: ``media/<first 16 hex of SHA-256>.<ext>``."""
        return f"media/{hashlib.sha256(self.data).hexdigest()[:16]}.{self.ext}"


def clean_image(source: Path | bytes, *, label: str = "image") -> CleanImage:
    """Decode an image (JPEG, PNG or WebP), apply its orientation and re-encode it bare."""
    if isinstance(source, Path):
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise UsageError(f"cannot read {label} {source.name}: {exc.strerror}", code="usage") from exc
        if size > MAX_IMAGE_BYTES:
            raise FormatError(f"{label} is over {MAX_IMAGE_BYTES} bytes", code="image-too-large")
        raw = source.read_bytes()
    else:
        raw = source
    if len(raw) > MAX_IMAGE_BYTES:
        raise FormatError(f"{label} is over {MAX_IMAGE_BYTES} bytes", code="image-too-large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as im:
                fmt = im.format or ""
                if fmt not in FORMATS:
                    raise FormatError(f"{label} must be JPEG, PNG or WebP, not {fmt or 'unknown'}", code="image-type")
                if im.width * im.height > MAX_PIXELS:
                    raise FormatError(f"{label} has too many pixels", code="image-too-large")
                im.load()
                pic = ImageOps.exif_transpose(im)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FormatError(f"{label} is not a readable JPEG, PNG or WebP image", code="image-type") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise FormatError(f"{label} is damaged: {exc}", code="image-type") from exc
    ext, media_type = FORMATS[fmt]
    if pic.mode in ("P", "PA"):
        pic = pic.convert("RGBA")
    bare = Image.new(pic.mode, pic.size)
    bare.paste(pic)
    out = io.BytesIO()
    if fmt == "JPEG":
        if bare.mode not in ("RGB", "L"):
            bare = bare.convert("RGB")
        bare.save(out, "JPEG", quality=85)
    elif fmt == "PNG":
        bare.save(out, "PNG")
    else:
        bare.save(out, "WEBP", quality=85)
    return CleanImage(out.getvalue(), ext, media_type, bare.width, bare.height)
