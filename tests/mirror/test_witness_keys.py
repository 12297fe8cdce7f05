"""A mirror witness across log key rotation and revocation (docs/transparency.md, "Log key rotation").

- The witness alone (mirror/witness.py): a table of what an accepted view signed
  by one key meets after the root changed its log keys. The same tree re-signed
  by a trusted key is the same view, never a fork, and is cosigned at once when
  the own witness view no longer opens.
- End to end with the simulated publisher: planned rotation keeps the old proofs
  (they still verify), new ones are under the new key; after a revocation the
  proofs the newest root no longer accepts are written again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.leaf import Leaf, LeafKind
from tamizdat.bundles.tlog.note import Ed25519Signer, Note, key_id
from tamizdat.bundles.tlog.policy import Policy
from tamizdat.bundles.tlog.proof_file import ProofFile
from tamizdat.bundles.tlog.reader import LogProofError, check_log_proof
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.errors import RejectedError
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import Root
from tamizdat.mirror.sync import Mirror
from tamizdat.mirror.witness import LogContents, LogRefusal, LogWitness, WitnessState
from tamizdat.netutil import free_port
from tamizdat.server import settings as settings_mod

from .conftest import TAMIZDAT, Daemon, MirrorFactory, get_json, wait_for
from .simulator import Simulator, key
from .test_witness_origin import PortDaemon, api, fetch
from .test_witness_sync import assert_proofs, join, now, witness_view

ORIGIN = "cd" * 32 + "/log"
T = 1_800_000_000
KEY_A, KEY_B, KEY_C = (SigningKey.from_seed(bytes([s]) * 32) for s in (11, 12, 13))
ME = CosignatureSigner("mirror-a", SigningKey.from_seed(b"\x02" * 32))


def _trust(*keys: SigningKey) -> LogTrust:
    logs = "".join(f"log {Ed25519Signer(ORIGIN, k).verifier.vkey()}\n" for k in keys)
    return LogTrust(ORIGIN, Policy.parse(f"{logs}witness a {ME.verifier.vkey()}\nquorum a\n"), 7 * 24 * 3600)


def _tree(size: int) -> TreeBuilder:
    tree = TreeBuilder()
    tree.extend(Leaf(LeafKind.INDEX, hashlib.sha256(b"%d" % n).digest()).to_bytes() for n in range(size))
    tree.flush()
    return tree


def _note(tree: TreeBuilder, *keys: SigningKey, root: bytes | None = None) -> bytes:
    cp = Checkpoint(ORIGIN, tree.size, root or tree.root())
    return sign_checkpoint(cp, [Ed25519Signer(ORIGIN, k) for k in keys])


def _witness(trust: LogTrust, accepted: bytes, tree: TreeBuilder, cosigned: bool = True) -> LogWitness:
    """A witness whose accepted view is ``accepted`` (a note of ``tree``), cosigned by it at T."""
    contents = LogContents()
    contents.size = tree.size
    state = WitnessState(ORIGIN, tree.size, tree.root(), tree.compact_range().hashes, accepted)
    if cosigned:
        note = Note.parse(accepted)
        state.witness_note = note.with_signatures([ME.cosign(note.text, T)]).to_bytes()
        state.cosigned = T
    return LogWitness(trust, state, contents, lambda: T + 60, ME)


def _no_root_at(size: int) -> bytes:
    raise AssertionError("the same size needs no tile")


@pytest.mark.parametrize(
    ("case", "accepted_by", "trusted", "offered_by", "same_root", "outcome"),
    [
        ("planned rotation: the old view, the new key signs the same tree", KEY_A, (KEY_A, KEY_B), KEY_B, True, "same"),
        ("revocation: the view by the revoked key, the same tree re-signed", KEY_A, (KEY_B,), KEY_B, True, "same"),
        ("revocation: the upstream still serves the revoked key's note", KEY_A, (KEY_B,), KEY_A, True, "refused"),
        ("revocation: the same size with another root is still a fork", KEY_A, (KEY_B,), KEY_B, False, "fork"),
        ("a key the root never delegated", KEY_A, (KEY_A,), KEY_C, True, "refused"),
    ],
)
def test_a_view_signed_by_a_rotated_or_revoked_key(
    case: str,
    accepted_by: SigningKey,
    trusted: tuple[SigningKey, ...],
    offered_by: SigningKey,
    same_root: bool,
    outcome: str,
) -> None:
    tree = _tree(5)
    w = _witness(_trust(*trusted), _note(tree, accepted_by), tree)
    offered = _note(tree, offered_by, root=None if same_root else bytes(32))
    if outcome == "fork":
        with pytest.raises(LogRefusal) as err:
            w.offer(offered, root_at=_no_root_at, primary=True)
        assert err.value.code == "fork" and err.value.sticky, case
        return
    if outcome == "refused":
        with pytest.raises(RejectedError) as rej:
            w.offer(offered, root_at=_no_root_at, primary=True)
        assert rej.value.code in ("no-log-signature", "unverified-note"), case
        assert not isinstance(rej.value, LogRefusal), case  # not a fork, not kept as evidence
        return
    offer = w.offer(offered, root_at=_no_root_at, primary=True)
    assert offer.action == "same", case
    w.accept(offer)
    assert w.state.alarm is None and w.state.checkpoint == offered
    # Cosigned again at once only when the own view no longer opens (its key was revoked).
    revoked = accepted_by not in trusted
    assert w.cosign_due() is revoked, case
    if revoked:
        view = w.cosign()
        signed = open_checkpoint(view, w.trust.policy.log_verifiers(ORIGIN), [ME.verifier], origin=ORIGIN)
        assert [v.signature.key_id for v in signed.log_signatures] == [
            key_id(ORIGIN, 1, offered_by.public.raw)
        ] and len(signed.cosignatures) == 1
        assert w.quorum(w.merged([])), case


def _log_key_ids(note: bytes) -> set[bytes]:
    return {s.key_id for s in Note.parse(note).signatures if len(s.signature) == 64}


def _proofs(m: Mirror) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in m.data.bundles.glob("*.tlog-proof")}


async def test_rotation_then_revocation_end_to_end(tmp_path: Path, make_mirror: MirrorFactory) -> None:
    sim = Simulator(tmp_path / "sim", log=True)
    sim.add(3)
    sim.publish()
    old_key = sim.log_key
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        s = await m.sync()
        assert s.ok and s.log is not None and s.log["state"] == "ok" and s.log["quorum"], s.log
        assert assert_proofs(m, sim) == 3
        first = _proofs(m)

        # Planned rotation: root N+1 adds a log key, the publisher signs its next checkpoint with it.
        new_key = key(77)
        sim.rotate(add=[(new_key, ("log",))])
        sim.log_key = new_key
        sim.add(1)
        sim.publish()
        s = await m.sync()
        assert s.ok and s.log is not None and s.log["state"] == "ok" and s.log["cosigned"], s.log
        assert _log_key_ids(witness_view(m, sim).read_bytes()) == {key_id(sim.origin, 1, new_key.public.raw)}
        assert assert_proofs(m, sim) == 4  # the old proofs (old key) and the new one (new key) all verify
        now_held = _proofs(m)
        assert {n: now_held[n] for n in first} == first  # not rewritten

        # Revocation of the old key: its proofs no longer verify; the mirror writes them again.
        sim.rotate(revoke=[old_key.keyid])
        for name, body in first.items():
            with pytest.raises(LogProofError):
                check_log_proof(name.removesuffix(".tlog-proof"), body, sim.root, now=now())
        sim.publish()
        s = await m.sync()
        assert s.ok and s.log is not None and s.log["state"] == "ok" and s.log["cosigned"], s.log
        assert s.log["proofs"] == 3 and s.log["proofs_pending"] == 0  # the 3 stale ones, written again
        assert assert_proofs(m, sim) == 4
        for name in first:
            note = ProofFile.parse((m.data.bundles / name).read_bytes()).checkpoint
            assert _log_key_ids(note) == {key_id(sim.origin, 1, new_key.public.raw)}

        # Nothing is checked again in the next sync: the trust the proofs were checked against is saved.
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "ok" and s.log["proofs"] == 0
        assert (m.data.state / "tlog" / "tlog-proof-trust").exists()


async def test_stale_proofs_are_written_again_across_rounds_and_a_restart(
    tmp_path: Path, make_mirror: MirrorFactory
) -> None:
    """One proof a round: the trust is remembered only once every stale proof was written again."""
    sim = Simulator(tmp_path / "sim", log=True)
    sim.add(3)
    sim.publish()
    old_key = sim.log_key
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        s = await m.sync()
        assert s.log is not None and s.log["quorum"] and assert_proofs(m, sim) == 3
        mark = m.data.state / "tlog" / "tlog-proof-trust"
        assert mark.exists()
        sim.log_key = key(78)
        sim.rotate(add=[(sim.log_key, ("log",))], revoke=[old_key.keyid])
        sim.publish()
        m.logsync.max_proofs = 1
        s = await m.sync()
        assert s.log is not None and (s.log["proofs"], s.log["proofs_pending"]) == (1, 2), s.log
        before = mark.read_bytes()
        # A restart: the stale proofs are found again (the trust was not saved) and written, one a round.
        again = Mirror(m.data, root_keyid=sim.root_keyid, upstreams=[url], config=m.config)
        again.logsync.max_proofs = 1
        done = []
        for _ in range(3):
            s = await again.sync()
            assert s.log is not None and s.log["state"] == "ok", s.log
            done.append(s.log["proofs"])
        assert done == [1, 1, 0] and mark.read_bytes() != before
        assert assert_proofs(again, sim) == 3


# -- real processes: `tamizdat serve` and `mirror run`, keys changed with the CLI --------------------


def _cli(*args: str) -> dict[str, Any]:
    out = subprocess.run([*TAMIZDAT, *args, "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def _held_proofs(public: Path) -> dict[str, bytes]:
    return {p.name.removesuffix(".tlog-proof"): p.read_bytes() for p in (public / "bundles").glob("*.tlog-proof")}


def _all_verify(public: Path, root: Root, ids: set[str]) -> bool:
    """Every one of ``ids`` has a proof under ``public`` that the readers' check accepts against ``root``."""
    proofs = _held_proofs(public)
    if set(proofs) != ids:
        return False
    try:
        for bid, body in proofs.items():
            check_log_proof(bid, body, root, now=now())
    except LogProofError:
        return False
    return True


@pytest.mark.slow
def test_real_origin_and_mirror_through_rotation_and_revocation(tmp_path: Path, daemons: list[Daemon]) -> None:
    keys, data = tmp_path / "keys", tmp_path / "origin"
    KeyDir(keys).init("Real News")
    root_keyid = KeyDir(keys).root_keyid()
    port_a = free_port()
    vkey_a = subprocess.run(
        [*TAMIZDAT, "mirror", "witness-key", "--data", str(tmp_path / "a"), "--name", "mirror-a"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    policy = tmp_path / "policy.txt"
    policy.write_text(f"witness a {vkey_a} http://127.0.0.1:{port_a}/\nquorum a\n")
    _cli("keys", "log-policy", "--dir", str(keys), "--policy", str(policy))
    data.mkdir()
    values = settings_mod.load(data / "settings.toml")
    values.update(round_seconds=0.2, keys=str(keys), tlog_gather_interval=0.5)
    settings_mod.save(data / "settings.toml", values)
    token = _cli("tokens", "create", "desk", "--data", str(data))["token"]
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    public = data / "public"

    def newest() -> Root:
        return KeyDir(keys).chain().newest

    def post(n: int) -> str:
        body = {
            "id": f"k{n}",
            "lang": "en",
            "title": f"Story {n}",
            "body": "Text.",
            "published": "2026-01-05T10:00:00Z",
        }
        return str(api(url, token, "articles", body)["versions"][0]["bundle_id"])

    def settled(ids: set[str]) -> bool:
        """Origin and mirror both hold a proof of every bundle that the newest root accepts."""
        log = get_json(url + "healthz")["log"]
        return (
            log["proofs_stale"] == 0
            and _all_verify(public, newest(), ids)
            and _all_verify(a.data / "public", newest(), ids)
        )

    with (tmp_path / "origin.log").open("wb") as logf:
        origin = subprocess.Popen(
            [*TAMIZDAT, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: fetch(url + "healthz") is not None, timeout=30)
            ids = {post(0), post(1)}
            a = PortDaemon(tmp_path / "a", root_keyid, [url], port_a)
            daemons.append(a)
            wait_for(lambda: settled(ids), timeout=90, step=0.3)
            first = _held_proofs(public)
            [old_key] = newest().log_keys()

            # Planned rotation: the next checkpoint is the new key's; old proofs stay and verify.
            new_key = _cli("keys", "rotate-signing", "--dir", str(keys), "--purpose", "log")["new_keyid"]
            ids.add(post(2))
            wait_for(lambda: settled(ids), timeout=90, step=0.3)
            origin_name = f"{root_keyid}/log"
            new_note_id = key_id(origin_name, 1, newest().signing_keys[new_key].key.raw)
            old_note_id = key_id(origin_name, 1, newest().signing_keys[old_key].key.raw)
            assert _log_key_ids((public / "tlog" / "checkpoint").read_bytes()) == {new_note_id, old_note_id}
            assert {b: _held_proofs(public)[b] for b in first} == first

            # Revocation of the old key: every proof under it is written again, on the origin and the mirror.
            _cli("keys", "revoke", old_key, "--dir", str(keys), "--reason", "leaked")
            started = time.monotonic()
            wait_for(lambda: settled(ids), timeout=90, step=0.3)
            took = time.monotonic() - started
            for bid, body in _held_proofs(public).items():
                if bid in first:
                    assert body != first[bid]
                assert new_note_id in _log_key_ids(ProofFile.parse(body).checkpoint)
            assert get_json(a.url + "healthz")["log"]["state"] == "ok"
            print(f"revocation -> every proof valid again on origin and mirror: {took:.1f} s")
        finally:
            origin.terminate()
            try:
                origin.wait(10)
            except subprocess.TimeoutExpired:
                origin.kill()
                origin.wait(10)
