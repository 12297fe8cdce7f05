"""The attacker's workshop: the publisher's online keys (bundle, index, log) stolen from the origin.

Everything here is made with real keys and real formats, so the only thing
that can stop it is the transparency log: forged bundles and indexes that
verify, checkpoints the log key really signed, whole alternative logs (entry
bundles, tiles and a signed checkpoint) that extend or contradict the real one.

:func:`backdated` stands in for time, not for an attacker: it re-dates the
witnesses' cosignatures (with their own keys, read from the mirrors' data
directories) as if an upstream had frozen long ago.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import parse_bundle_input
from tamizdat.bundles.index import ArticleInfo, BundleEntry, Index, Shard, ShardedList, sign_index
from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.checkpoint import Checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.leaf import Leaf, index_leaf
from tamizdat.bundles.tlog.note import Ed25519Signer, Note
from tamizdat.bundles.tlog.proof_file import ProofFile
from tamizdat.bundles.tlog.tiles import decode_entry_bundle, tile_layout
from tamizdat.keys import dsse, timefmt
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.server import settings as settings_mod

Read = Callable[[str], bytes | None]
"""A public tree as some upstream shows it: relative path -> bytes (None: absent)."""


def must(read: Read, rel: str) -> bytes:
    data = read(rel)
    if data is None:
        raise AssertionError(f"{rel} is not in the tree")
    return data


def index_payload(raw: bytes) -> bytes:
    return dsse.Envelope.from_bytes(raw, expected_type=dsse.INDEX_TYPE).payload


def checkpoint_of(note: bytes) -> Checkpoint:
    return Checkpoint.parse(Note.parse(note).text)


@dataclass(frozen=True)
class ForgedLog:
    """An alternative log: its files under ``tlog/`` (checkpoint included) and its signed checkpoint."""

    files: dict[str, bytes]
    checkpoint: bytes

    @property
    def size(self) -> int:
        return checkpoint_of(self.checkpoint).size


class Forger:
    """Copies of the origin's online keys, and what they can sign."""

    def __init__(self, keys: Path, workdir: Path):
        kd = KeyDir(keys)
        self.chain = kd.chain()
        tlog = self.chain.newest.tlog
        assert tlog is not None, "the publisher keeps no log"
        self.origin = tlog.origin
        self.bundle_key = kd.signer("bundle")
        self.index_key = kd.signer("index")
        self.log_key = kd.signer("log")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)

    # -- bundles and indexes ----------------------------------------------------------
    def bundle(self, article_id: str, title: str) -> tuple[BundleEntry, bytes]:
        """A one-article bundle signed with the stolen bundle key: its index entry and ZIP bytes."""
        now = timefmt.now().replace(microsecond=0)
        article = {"id": article_id, "lang": "en", "title": title, "body": "Forged.", "published": timefmt.format(now)}
        out = self.workdir / f"{article_id}.zip"
        built = build_bundle(
            parse_bundle_input(json.dumps({"articles": [article]}).encode()),
            signer=self.bundle_key,
            chain=self.chain,
            out=out,
            durable=False,
        )
        entry = BundleEntry(
            id=built.bundle_id,
            sha256=built.sha256,
            size=built.size,
            created=built.manifest.created,
            kind=built.manifest.kind,
            articles=(ArticleInfo(article_id, 1, "en", title),),
        )
        return entry, out.read_bytes()

    def index(
        self, read: Read, *, version: int, add: Sequence[BundleEntry] = (), unretract: Iterable[str] = ()
    ) -> tuple[dict[str, bytes], bytes]:
        """The tree's index re-signed with the stolen index key as ``version``, with bundles added or
        retraction marks dropped; returns the files to show (index.json and its shards) and its payload."""
        real = Index.from_payload(index_payload(must(read, "index.json")))
        entries = [e for ref in real.shards for e in Shard.from_bytes(must(read, f"index/{ref.sha256}.json")).bundles]
        hidden = set(unretract)
        listing = ShardedList()
        for e in [*entries, *add]:
            listing.append(replace(e, retracted=None) if e.id in hidden else e)
        rendered = listing.render()
        now = timefmt.now().replace(microsecond=0)
        forged = replace(
            real, version=version, created=now, expires=now + dt.timedelta(days=1), shards=tuple(r for r, _ in rendered)
        )
        raw = sign_index(forged, self.index_key)
        files = {f"index/{ref.sha256}.json": data for ref, data in rendered}
        files["index.json"] = raw
        return files, forged.to_payload()

    # -- logs ---------------------------------------------------------------------------
    def entries(self, read: Read) -> list[bytes]:
        """Every entry of the log the tree's ``tlog/checkpoint`` names, from its entry bundles."""
        size = checkpoint_of(must(read, "tlog/checkpoint")).size
        out: list[bytes] = []
        for tile in tile_layout(size, entries=True):
            if tile.is_entries:
                out += decode_entry_bundle(must(read, "tlog/" + tile.path()), tile.width)
        assert len(out) == size
        return out

    def checkpoint(self, size: int, root: bytes) -> bytes:
        """A checkpoint of any size and root, signed with the stolen log key."""
        return sign_checkpoint(Checkpoint(self.origin, size, root), [Ed25519Signer(self.origin, self.log_key)])

    def log(self, entries: Sequence[bytes]) -> ForgedLog:
        """A whole log of ``entries``: entry bundles, hash tiles and a checkpoint signed with the log key."""
        builder = TreeBuilder()
        builder.extend(entries)
        files = {f"tlog/{rel}": data for rel, data in builder.flush().files()}
        note = self.checkpoint(builder.size, builder.root())
        files["tlog/checkpoint"] = note
        return ForgedLog(files, note)


def leaves(*items: Leaf) -> list[bytes]:
    return [leaf.to_bytes() for leaf in items]


def other_index_leaf(label: str) -> bytes:
    """An index leaf of an index the publisher never signed."""
    return index_leaf(hashlib.sha256(label.encode()).digest()).to_bytes()


# -- time -----------------------------------------------------------------------------------


def witness_signer(mirror_data: Path) -> CosignatureSigner:
    """A mirror's own witness key and name (DATA/state/witness.key, witness_name in settings)."""
    name = settings_mod.load(mirror_data / "settings.toml")["witness_name"]
    return CosignatureSigner(str(name), SigningKey.load(mirror_data / "state" / "witness.key"))


def backdated(note: bytes, witnesses: Sequence[CosignatureSigner], times: Sequence[int]) -> bytes:
    """``note`` with its log signature only, cosigned by ``witnesses`` at ``times`` (UNIX seconds)."""
    parsed = Note.parse(note)
    origin = checkpoint_of(note).origin
    logs = tuple(s for s in parsed.signatures if s.name == origin)
    cosigs = [w.cosign(parsed.text, t) for w, t in zip(witnesses, times, strict=True)]
    return Note(parsed.text, logs).with_signatures(cosigs).to_bytes()


def with_checkpoint(proof: bytes, note: bytes) -> bytes:
    """The same inclusion proof under another signed note of the same checkpoint."""
    pf = ProofFile.parse(proof)
    return ProofFile(pf.index, pf.proof, note, pf.extra).to_bytes()
