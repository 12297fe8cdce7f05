"""10,000 random mutations of valid bundles (500 in the short run): none is accepted with changed content.

The golden bundles (tests/assets/golden: an article, a three-article edition
with an image, a bundle carrying a rotated root chain) are mutated at random,
deterministically (seeded), by operators at two levels:

- bytes: flip 1-4 bytes anywhere, flip a byte of a ZIP header / the central
  directory / the end record, truncate, insert 1-16 random bytes, delete 1-16
  bytes, append bytes;
- entries (the archive is rewritten in the canonical form, so the structure
  checks pass and the later steps are reached): change one byte of an entry,
  swap two entries' contents, drop, add, rename or duplicate an entry, change
  an entry's compression method, reorder entries, edit the manifest payload
  without re-signing, re-sign an edited manifest with an undelegated key, put
  another bundle's manifest or roots in, drop the signature.

Every mutated file is given to ``verify_bundle``. It must be rejected with a
``RejectedError`` (any other exception is a failure), or accepted with exactly
the original bundle id and entry contents (a mutation of bits no reader sees).
One outcome is counted apart, not failed (see judge()): the carried root
chain (``meta/roots/N.json``) is not covered by the manifest's signature, so
genuine roots of the same publisher added, or the newest dropped, still verify
with the same id, manifest and files. A forged or corrupted carried root that
is accepted anywhere in the chain (the bug once found below the chain's
anchor, test_forged_root_below_the_anchor_is_rejected) fails the test.
"""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tamizdat.bundles.verify import verify_bundle
from tamizdat.bundles.zipstrict import EXTERNAL_ATTR
from tamizdat.errors import RejectedError
from tamizdat.keys import dsse
from tamizdat.keys.ed25519 import SigningKey

from .conftest import Figures
from .support import FULL, REPO

MUTATIONS = 10_000 if FULL else 500
GOLDEN = REPO / "tests" / "assets" / "golden"
NAMES = ("article-en.zip", "edition-multilang.zip", "rotated.zip")
ROOT_KEYID = (GOLDEN / "root_keyid.txt").read_text().strip()
MANIFEST = "meta/manifest.dsse.json"
GENUINE_ROOTS = frozenset(p.read_bytes() for p in (GOLDEN / "keys" / "roots").glob("*.json"))
STORED = (".jpg", ".png", ".webp")


@dataclass(frozen=True)
class Original:
    name: str
    data: bytes
    bundle_id: str
    entries: dict[str, bytes]  # in archive order
    structure: tuple[int, ...]  # byte offsets of headers, central directory, end record


def entries_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _structure(data: bytes) -> tuple[int, ...]:
    offsets: list[int] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        for info in infos:
            start = info.header_offset
            offsets += range(start, start + 30 + len(info.filename.encode()))
        central = struct.unpack("<I", data[-6:-2])[0]
    offsets += range(central, len(data))
    return tuple(offsets)


def load(name: str) -> Original:
    data = (GOLDEN / name).read_bytes()
    bid = verify_bundle(io.BytesIO(data), root_keyid=ROOT_KEYID).bundle_id
    return Original(name, data, bid, entries_of(data), _structure(data))


def canonical_zip(entries: list[tuple[str, bytes]], *, stored: set[str] | None = None) -> bytes:
    """The bundle writer's form (docs/format.md "ZIP form") for arbitrary entries, in the given order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in entries:
            keep = name.endswith(STORED) if stored is None else name in stored
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.create_version = 20
            info.extract_version = 20
            info.external_attr = EXTERNAL_ATTR
            info.compress_type = zipfile.ZIP_STORED if keep else zipfile.ZIP_DEFLATED
            with warnings.catch_warnings():  # a duplicate name is one of the mutations
                warnings.simplefilter("ignore", UserWarning)
                zf.writestr(info, body, compresslevel=None if keep else 6)
    return out.getvalue()


# -- operators ---------------------------------------------------------------------------------------

Op = Callable[[random.Random, Original, dict[str, Original]], bytes]


def _at(data: bytes, pos: int, new: bytes, drop: int = 0) -> bytes:
    return data[:pos] + new + data[pos + drop :]


def flip_bytes(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    data = bytearray(o.data)
    for _i in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    return bytes(data)


def flip_structure(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    pos = rng.choice(o.structure)
    return _at(o.data, pos, bytes([o.data[pos] ^ rng.randint(1, 255)]), 1)


def truncate(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    return o.data[: rng.randrange(len(o.data))]


def insert(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    return _at(o.data, rng.randrange(len(o.data) + 1), rng.randbytes(rng.randint(1, 16)))


def delete(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    pos = rng.randrange(len(o.data))
    return _at(o.data, pos, b"", rng.randint(1, 16))


def append(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    return o.data + rng.randbytes(rng.randint(1, 64))


def _items(o: Original) -> list[tuple[str, bytes]]:
    return list(o.entries.items())


def edit_entry_byte(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    items = _items(o)
    i = rng.randrange(len(items))
    name, body = items[i]
    if body:
        pos = rng.randrange(len(body))
        body = _at(body, pos, bytes([body[pos] ^ rng.randint(1, 255)]), 1)
    else:
        body = b"x"
    items[i] = (name, body)
    return canonical_zip(items)


def swap_contents(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    items = _items(o)
    a, b = rng.sample(range(len(items)), 2)
    items[a], items[b] = (items[a][0], items[b][1]), (items[b][0], items[a][1])
    return canonical_zip(items)


def drop_entry(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    items = _items(o)
    del items[rng.randrange(len(items))]
    return canonical_zip(items)


def add_entry(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    name = rng.choice(["articles/9.html", "media/0000000000000000.png", "zz.html", "meta/extra.json", "a.css"])
    return canonical_zip(sorted([*_items(o), (name, rng.randbytes(rng.randint(0, 64)))]))


def rename_entry(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    items = _items(o)
    i = rng.randrange(len(items))
    name, body = items[i]
    new = rng.choice([name.upper(), name + "x", "../" + name, "/" + name, name.replace("/", "\\"), name + "/"])
    items[i] = (new, body)
    return canonical_zip(sorted(items))


def duplicate_entry(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    items = _items(o)
    i = rng.randrange(len(items))
    name, body = items[i]
    twin = (name, body if rng.random() < 0.5 else body + b" ")
    items.insert(i + 1, twin)
    return canonical_zip(items)


def switch_method(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    items = _items(o)
    stored = {n for n, _ in items if n.endswith(STORED)}
    name = rng.choice([n for n, _ in items])
    stored ^= {name}
    return canonical_zip(items, stored=stored)


def reorder(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    items = _items(o)
    shuffled = items[:]
    while shuffled == items:
        rng.shuffle(shuffled)
    return canonical_zip(shuffled)


def _envelope(o: Original) -> dict[str, object]:
    doc: dict[str, object] = json.loads(o.entries[MANIFEST])
    return doc


def _with_manifest(o: Original, envelope: dict[str, object]) -> bytes:
    items = [(n, json.dumps(envelope).encode() if n == MANIFEST else b) for n, b in _items(o)]
    return canonical_zip(items)


def _edited_payload(rng: random.Random, o: Original) -> bytes:
    payload = json.loads(base64.b64decode(str(_envelope(o)["payload"])))
    edit = rng.choice(["title", "created", "publisher", "file", "supersedes", "kind"])
    if edit == "title":
        payload["articles"][0]["title"] += " (edited)"
    elif edit == "created":
        payload["created"] = "2026-03-01T00:00:00Z"
    elif edit == "publisher":
        payload["publisher"] = "Another Newsroom"
    elif edit == "file":
        payload["files"][0]["size"] += 1
    elif edit == "supersedes":
        payload["supersedes"] = ["0" * 64]
    else:
        payload["kind"] = "edition" if payload["kind"] == "article" else "article"
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def edit_manifest_unsigned(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    env = _envelope(o)
    env["payload"] = base64.b64encode(_edited_payload(rng, o)).decode()
    return _with_manifest(o, env)


def resign_manifest_undelegated(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    key = SigningKey.from_seed(rng.randbytes(32))
    payload = _edited_payload(rng, o) if rng.random() < 0.7 else base64.b64decode(str(_envelope(o)["payload"]))
    env = json.loads(dsse.sign(dsse.BUNDLE_TYPE, payload, [key]).to_bytes())
    return _with_manifest(o, env)


def foreign_control(rng: random.Random, o: Original, others: dict[str, Original]) -> bytes:
    other = others[rng.choice([n for n in others if n != o.name])]
    items = dict(_items(o))
    what = rng.choice(["manifest", "roots", "signature"])
    if what == "manifest":
        items[MANIFEST] = other.entries[MANIFEST]
    elif what == "roots":
        for n in [n for n in items if n.startswith("meta/roots/")]:
            del items[n]
        items.update({n: b for n, b in other.entries.items() if n.startswith("meta/roots/")})
    else:
        env = _envelope(o)
        env["signatures"] = _envelope(other)["signatures"]
        items[MANIFEST] = json.dumps(env).encode()
    return canonical_zip(sorted(items.items()))


def drop_signature(rng: random.Random, o: Original, _: dict[str, Original]) -> bytes:
    env = _envelope(o)
    env["signatures"] = [] if rng.random() < 0.5 else [{"keyid": "0" * 64, "sig": base64.b64encode(bytes(64)).decode()}]
    return _with_manifest(o, env)


OPERATORS: list[tuple[Op, int]] = [  # (operator, weight)
    (flip_bytes, 25),
    (flip_structure, 10),
    (truncate, 6),
    (insert, 6),
    (delete, 6),
    (append, 3),
    (edit_entry_byte, 10),
    (swap_contents, 4),
    (drop_entry, 4),
    (add_entry, 4),
    (rename_entry, 4),
    (duplicate_entry, 3),
    (switch_method, 3),
    (reorder, 3),
    (edit_manifest_unsigned, 3),
    (resign_manifest_undelegated, 3),
    (foreign_control, 2),
    (drop_signature, 1),
]


def judge(o: Original, mutated: bytes) -> str:
    """ "rejected:<step>:<code>", or one of the ``accepted-*`` outcomes:

    - "accepted-same": the same bundle id and the same bytes in every entry;
    - "accepted-roots": the same id, manifest and files, another set of carried roots each of which is a
      genuine root of this publisher. The carried roots are not covered by the manifest's signature (the
      chain is walked from the pinned key id, docs/format.md steps 11-15), so they can be added or the
      newest dropped; see docs/reliability.md;
    - "accepted-unverified-root": the same id, manifest and files, but a carried root that the publisher
      never signed (fixed: a forged ``meta/roots/1.json`` below the chain's anchor was once never checked,
      see test_forged_root_below_the_anchor_is_rejected); fails the test;
    - "accepted-CHANGED": anything else accepted: the bug this test hunts.
    """
    try:
        result = verify_bundle(io.BytesIO(mutated), root_keyid=ROOT_KEYID)
    except RejectedError as err:
        return f"rejected:{err.step}:{err.code}"
    entries = entries_of(mutated)
    if result.bundle_id != o.bundle_id:
        return "accepted-CHANGED"
    if entries == o.entries:
        return "accepted-same"

    def content(e: dict[str, bytes]) -> dict[str, bytes]:
        return {n: b for n, b in e.items() if not n.startswith("meta/roots/")}

    if content(entries) != content(o.entries):
        return "accepted-CHANGED"
    roots = [b for n, b in entries.items() if n.startswith("meta/roots/")]
    return "accepted-roots" if all(r in GENUINE_ROOTS for r in roots) else "accepted-unverified-root"


def _with_root_one(o: Original, edit: Callable[[dict[str, object]], None]) -> bytes:
    env = json.loads(o.entries["meta/roots/1.json"])
    edit(env)
    return canonical_zip([(n, json.dumps(env).encode() if n == "meta/roots/1.json" else b) for n, b in _items(o)])


def _flip_signature(env: dict[str, object]) -> None:
    sigs = env["signatures"]
    assert isinstance(sigs, list)
    raw = bytearray(base64.b64decode(sigs[0]["sig"]))
    raw[5] ^= 1
    sigs[0] = {"keyid": sigs[0]["keyid"], "sig": base64.b64encode(bytes(raw)).decode()}


def _forge_publisher(env: dict[str, object]) -> None:
    payload = json.loads(base64.b64decode(str(env["payload"])))
    payload["publisher"] = "Ministry of Truth"
    env["payload"] = base64.b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()).decode()


def test_forged_root_below_the_anchor_is_rejected() -> None:
    """A bundle carrying roots 1-3 whose ``meta/roots/1.json`` lists the pinned key but does not verify (a
    flipped signature byte, or a forged payload: another publisher name) is rejected: every byte a valid
    bundle carries is the publisher's. Found by the 10,000-mutation run (edit_entry_byte, #4271); fixed by
    authenticating every carried root below the anchor (docs/format.md step 13)."""
    o = load("rotated.zip")
    for edit in (_flip_signature, _forge_publisher):
        with pytest.raises(RejectedError) as info:
            verify_bundle(io.BytesIO(_with_root_one(o, edit)), root_keyid=ROOT_KEYID)
        assert (info.value.step, info.value.code) == ("15", "root-chain-signature"), edit.__name__


@pytest.mark.slow
def test_random_mutations_never_accepted_with_changed_content(figures: Figures) -> None:
    originals = {name: load(name) for name in NAMES}
    rng = random.Random(1812)
    ops, weights = zip(*OPERATORS, strict=True)
    by_op: dict[str, Counter[str]] = {op.__name__: Counter() for op in ops}
    codes: Counter[str] = Counter()
    changed: list[str] = []
    for i in range(MUTATIONS):
        o = originals[NAMES[i % len(NAMES)]]
        op = rng.choices(ops, weights)[0]
        mutated = op(rng, o, originals)
        if mutated == o.data:
            by_op[op.__name__]["identical"] += 1
            continue
        outcome = judge(o, mutated)  # any exception other than RejectedError fails the test here
        kind = outcome.split(":", 1)[0]
        by_op[op.__name__][kind] += 1
        if kind == "rejected":
            codes[outcome.split(":", 1)[1]] += 1
        if outcome == "accepted-CHANGED":
            changed.append(f"#{i} {op.__name__} on {o.name}")
    total = Counter[str]()
    for c in by_op.values():
        total.update(c)
    figures.add(
        f"{MUTATIONS} mutations of {len(NAMES)} golden bundles: {total['rejected']} rejected "
        f"({len(codes)} distinct step:code), {total['accepted-same']} accepted with identical content, "
        f"{total['accepted-roots']} accepted with identical content and another genuine root chain, "
        f"{total['accepted-unverified-root']} accepted with identical content and a carried root that does not "
        f"verify, "
        f"{total['identical']} no-op, {len(changed)} accepted with changed content",
        mutations=MUTATIONS,
        outcomes=dict(total),
        by_operator={k: dict(v) for k, v in by_op.items()},
        codes=dict(codes.most_common()),
    )
    assert not changed, changed[:10]
    assert not total["accepted-unverified-root"], "a carried root that does not verify was accepted"
    assert sum(total.values()) == MUTATIONS
