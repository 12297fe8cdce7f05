"""The transparency log's static paths (docs/transparency.md), shared by the app and nginx tests.

:data:`SERVED` is the contract's table as test rows; :data:`NOT_SERVED` are
requests that must not reach a file (traversal, non-canonical tile paths,
names outside the patterns); :func:`make_log_tree` writes a public tree holding
every served file plus decoys beside and above it.
"""

from __future__ import annotations

from pathlib import Path

BID = "ab" * 32
OH = "cd" * 32
IMMUTABLE = "public, max-age=31536000, immutable"
NOTE = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"

# path -> (Cache-Control, Content-Type)
SERVED: dict[str, tuple[str, str]] = {
    "tlog/checkpoint": ("no-cache", NOTE),
    "tlog/index.tlog-proof": ("no-cache", NOTE),
    f"tlog/witness/{OH}/checkpoint": ("no-cache", NOTE),
    f"tlog/witness/{OH}/evidence/fork-12": ("no-cache", NOTE),
    f"bundles/{BID}.tlog-proof": ("public, max-age=3600", NOTE),
    f"tlog/index/{BID}.json": (IMMUTABLE, "application/json"),
    "tlog/tile/0/000": (IMMUTABLE, OCTETS),
    "tlog/tile/0/x001/234": (IMMUTABLE, OCTETS),
    "tlog/tile/2/x999/x999/999": (IMMUTABLE, OCTETS),
    "tlog/tile/entries/x001/234": (IMMUTABLE, OCTETS),
    "tlog/tile/0/x001/234.p/5": ("public, max-age=60", OCTETS),
    "tlog/tile/1/000.p/255": ("public, max-age=60", OCTETS),
    "tlog/tile/entries/000.p/1": ("public, max-age=60", OCTETS),
}

# Files that exist in the tree but must never be served through these routes.
SECRETS = ("settings.toml", "tlog/secret", "tlog/tile/0/notes.txt", "tlog/tile/0/000.p/0", "tlog/tile/0/0000")

NOT_SERVED = (
    "/tlog/",
    "/tlog/tile/",
    "/tlog/tile/0/",
    "/tlog/tile/0/x001/",
    "/tlog/tile/0/1234",  # not split in groups
    "/tlog/tile/0/x000/234",  # non-canonical leading group
    "/tlog/tile/0/0000",
    "/tlog/tile/0/notes.txt",
    "/tlog/tile/64/000",  # level above the maximum
    "/tlog/tile/00/000",
    "/tlog/tile/0/000.p/0",
    "/tlog/tile/0/000.p/256",
    "/tlog/tile/0/000.p/05",
    "/tlog/tile/0/000.p/",
    "/tlog/tile/0/../../secret",
    "/tlog/tile/0/..%2F..%2Fsecret",
    "/tlog/tile/0/%2e%2e/%2e%2e/%2e%2e/settings.toml",
    "/tlog/tile/0/x001/..%2F..%2F..%2F..%2Fsettings.toml",
    "/tlog/tile/entries/../0/000",
    "/tlog/tile//0/000",
    "/tlog/secret",
    "/tlog/witness/../secret",
    f"/tlog/witness/{OH}/evidence/..",
    f"/tlog/witness/{OH}/evidence/.",
    f"/tlog/witness/{OH}/evidence/",
    f"/tlog/witness/{OH}/evidence/..%2F..%2F..%2Fsecret",
    f"/tlog/witness/{OH}/evidence/.hidden",
    f"/tlog/witness/{OH.upper()}/checkpoint",
    f"/tlog/witness/{OH[:-1]}/checkpoint",
    f"/tlog/index/{BID.upper()}.json",
    f"/tlog/index/{BID}.json/",
    "/tlog/index/..%2F..%2Fsettings.toml",
    f"/bundles/{BID}.tlog-proof/",
    f"/bundles/{BID.upper()}.tlog-proof",
)


def body_of(rel: str) -> bytes:
    return f"contents of {rel}\n".encode()


def make_log_tree(base: Path) -> Path:
    """``base/public`` with every :data:`SERVED` file and the decoys; ``base/settings.toml`` outside it."""
    pub = base / "public"
    for rel in (*SERVED, *SECRETS, f"tlog/witness/{OH}/evidence/.hidden"):
        path = pub / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body_of(rel))
    (base / "settings.toml").write_bytes(b"secret settings\n")
    return pub
