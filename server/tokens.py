"""API bearer tokens: 32 random bytes, shown once, stored as their SHA-256.

A token reads ``tzd_<base64url of 32 bytes>``. The database keeps only the
hex SHA-256 of the 32 bytes, so a copy of ``DATA/state`` does not let anyone
publish. Revoked tokens stay listed (and answer 403) so that their use shows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import Enum

from tamizdat.errors import UsageError
from tamizdat.keys import timefmt

from .store import Store, Tx

PREFIX = "tzd_"
NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created: str
    revoked: str | None


class Check(Enum):
    VALID = "valid"
    UNKNOWN = "unknown"
    REVOKED = "revoked"


def new_token() -> tuple[str, str]:
    """A fresh token and the hash to store."""
    raw = secrets.token_bytes(32)
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("="), hashlib.sha256(raw).hexdigest()


def token_hash(token: str) -> str | None:
    """The stored hash for a presented token, or None if it is not one of ours in form."""
    if not token.startswith(PREFIX) or len(token) != len(PREFIX) + 43:
        return None
    try:
        raw = base64.urlsafe_b64decode(token[len(PREFIX) :] + "=")
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(raw).hexdigest() if len(raw) == 32 else None


async def check(tx: Tx, token: str) -> tuple[Check, str | None]:
    """Is ``token`` valid? Returns the verdict and the token's name."""
    digest = token_hash(token)
    if digest is None:
        return Check.UNKNOWN, None
    row = await tx.one("SELECT name, revoked FROM tokens WHERE hash = ?", (digest,))
    if row is None:
        return Check.UNKNOWN, None
    return (Check.REVOKED if row["revoked"] else Check.VALID), str(row["name"])


async def create(store: Store, name: str) -> str:
    """Make a token called ``name``; returns the token (the only time it is seen)."""
    if not NAME_RE.match(name):
        raise UsageError("a token name is 1-64 letters, digits, '.', '_' or '-'", code="usage")
    token, digest = new_token()
    async with store.tx() as tx:
        if await tx.one("SELECT 1 FROM tokens WHERE name = ?", (name,)):
            raise UsageError(f"a token called {name!r} exists (revoke it or pick another name)", code="token-exists")
        await tx.run(
            "INSERT INTO tokens (name, hash, created) VALUES (?, ?, ?)", (name, digest, timefmt.format(timefmt.now()))
        )
    return token


async def listing(store: Store) -> list[TokenInfo]:
    async with store.tx(write=False) as tx:
        rows = await tx.all("SELECT name, created, revoked FROM tokens ORDER BY name")
    return [TokenInfo(r["name"], r["created"], r["revoked"]) for r in rows]


async def revoke(store: Store, name: str) -> None:
    async with store.tx() as tx:
        row = await tx.one("SELECT revoked FROM tokens WHERE name = ?", (name,))
        if row is None:
            raise UsageError(f"no token called {name!r}", code="no-token")
        if row["revoked"]:
            raise UsageError(f"token {name!r} is already revoked", code="token-revoked")
        await tx.run("UPDATE tokens SET revoked = ? WHERE name = ?", (timefmt.format(timefmt.now()), name))
