"""The request body of c2sp.org/tlog-witness ``add-checkpoint``, and its 409 response body.

::

    old <size>\\n
    <base64 consistency hash>\\n   (0 to 63 lines; none if old is 0)
    \\n
    <checkpoint note>
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import WitnessRequestError
from .hashing import HASH_SIZE, MAX_TREE_SIZE
from .note import b64, b64strict

MAX_CONSISTENCY_LINES = 63
MAX_REQUEST_BYTES = 1 << 20
SIZE_CONTENT_TYPE = "text/x.tlog.size"

_OLD = re.compile(r"old (0|[1-9][0-9]{0,19})")
_SIZE = re.compile(rb"(0|[1-9][0-9]{0,19})\n")


@dataclass(frozen=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes  # the signed note, verbatim

    def __post_init__(self) -> None:
        if not 0 <= self.old_size <= MAX_TREE_SIZE:
            raise WitnessRequestError("old size is not a uint64")
        if len(self.proof) > MAX_CONSISTENCY_LINES or any(len(h) != HASH_SIZE for h in self.proof):
            raise WitnessRequestError("at most 63 consistency hashes of 32 bytes")
        if self.old_size == 0 and self.proof:
            raise WitnessRequestError("the proof from size 0 is empty")

    def to_bytes(self) -> bytes:
        lines = [f"old {self.old_size}", *(b64(h) for h in self.proof)]
        return ("\n".join(lines) + "\n\n").encode("ascii") + self.checkpoint

    @classmethod
    def parse(cls, data: bytes) -> AddCheckpointRequest:
        if len(data) > MAX_REQUEST_BYTES:
            raise WitnessRequestError("request body is too large")
        head, sep, checkpoint = data.partition(b"\n\n")
        if not sep:
            raise WitnessRequestError("request has no checkpoint")
        try:
            lines = head.decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise WitnessRequestError("request header is not ASCII") from None
        m = _OLD.fullmatch(lines[0])
        if m is None or int(m.group(1)) > MAX_TREE_SIZE:
            raise WitnessRequestError("request does not start with a valid old size line")
        if len(lines) - 1 > MAX_CONSISTENCY_LINES:
            raise WitnessRequestError("more than 63 consistency proof lines")
        proof = tuple(
            b64strict(line, what="consistency hash", error=WitnessRequestError, code="bad-witness-request")
            for line in lines[1:]
        )
        return cls(int(m.group(1)), proof, checkpoint)


def format_size_response(size: int) -> bytes:
    """The body of a 409 Conflict answer: the latest cosigned size and a newline."""
    return b"%d\n" % size


def parse_size_response(body: bytes) -> int:
    m = _SIZE.fullmatch(body)
    if m is None or int(m.group(1)) > MAX_TREE_SIZE:
        raise WitnessRequestError("malformed tree size response")
    return int(m.group(1))


def origin_hash(origin: str) -> str:
    """Lowercase hex SHA-256 of a log's origin: the path element naming the log in witness URLs."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


def evidence_name(code: str, size: int, note: bytes) -> str:
    """A stable file name for a signed note kept as evidence (same note, same name): ``<code>-<size>-<sha16>``."""
    return f"{code}-{size}-{hashlib.sha256(note).hexdigest()[:16]}"
