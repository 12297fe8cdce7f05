"""C2SP tlog-policy: parsing (the spec's example shape), errors, quorum evaluation, freshness."""

from __future__ import annotations

import pytest

from tamizdat.bundles.tlog.checkpoint import Checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.errors import PolicyError, QuorumError
from tamizdat.bundles.tlog.hashing import leaf_hash
from tamizdat.bundles.tlog.note import Ed25519Signer, Note
from tamizdat.bundles.tlog.policy import Policy

from .conftest import NOW, ORIGIN
from .util import key

LOG = Ed25519Signer(ORIGIN, key(1))
X = [CosignatureSigner(f"x{i}.example/w", key(20 + i), clock=lambda: NOW) for i in range(3)]
Y = [CosignatureSigner(f"y{i}.example/w", key(30 + i), clock=lambda: NOW) for i in range(3)]


def spec_example() -> str:
    """The two-level example of tlog-policy, with real keys."""
    lines = [f"log {LOG.verifier.vkey()}", ""]
    lines += [f"witness X{i + 1} {w.verifier.vkey()}" for i, w in enumerate(X)]
    lines += ["group X-witnesses 2 X1 X2 X3", ""]
    lines += [f"witness Y{i + 1} {w.verifier.vkey()}" for i, w in enumerate(Y)]
    lines += ["group Y-witnesses any Y1 Y2 Y3", "", "group X-and-Y all X-witnesses Y-witnesses", "quorum X-and-Y"]
    return "\n".join(lines) + "\n"


def test_parse_spec_example() -> None:
    p = Policy.parse(spec_example())
    assert [log.origin for log in p.logs] == [ORIGIN]
    assert [w.name for w in p.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert [(g.name, g.threshold, g.members) for g in p.groups] == [
        ("X-witnesses", 2, ("X1", "X2", "X3")),
        ("Y-witnesses", 1, ("Y1", "Y2", "Y3")),
        ("X-and-Y", 2, ("X-witnesses", "Y-witnesses")),
    ]
    assert p.quorum == "X-and-Y"
    assert Policy.parse(p.to_text()) == p


@pytest.mark.parametrize(
    ("names", "ok"),
    [
        ({"X1", "X2", "Y3"}, True),
        ({"X1", "X2", "X3", "Y1", "Y2", "Y3"}, True),
        ({"X1", "Y1", "Y2", "Y3"}, False),  # one X
        ({"X1", "X3"}, False),  # no Y
        (set(), False),
        ({"X-witnesses", "Y-witnesses"}, False),  # group names are not witnesses
    ],
)
def test_quorum(names: set[str], ok: bool) -> None:
    assert Policy.parse(spec_example()).satisfied(names) is ok


def test_quorum_none_and_single_witness() -> None:
    p = Policy.parse(f"log {LOG.verifier.vkey()}\nquorum none\n")
    assert p.quorum is None and p.satisfied([])
    p = Policy.parse(f"witness W {X[0].verifier.vkey()} https://w.example/\n  quorum\tW  \n")
    assert p.satisfied(["W"]) and not p.satisfied([])
    assert p.witnesses[0].url == "https://w.example/" and p.logs == ()


def test_comments_whitespace_and_opaque_names() -> None:
    text = (
        "# a policy\n"
        f"  \tlog   {LOG.verifier.vkey()}   https://log.example/  \n"
        "   # indented comment\n"
        f"witness K {X[0].verifier.vkey()}\n"
        f"witness \u212a {X[1].verifier.vkey()}\n"  # Kelvin sign: another name than K
        "group both all K \u212a\n"
        "quorum both\n"
    )
    p = Policy.parse(text.encode("utf-8"))
    assert [w.name for w in p.witnesses] == ["K", "\u212a"]
    assert p.logs[0].url == "https://log.example/"
    raw = f"witness \xe9 {X[0].verifier.vkey()}\nquorum \xe9\n".encode("latin-1")  # not UTF-8: opaque octets
    assert Policy.parse(raw).satisfied([Policy.parse(raw).witnesses[0].name])


def _vk(i: int) -> str:
    return X[i].verifier.vkey()


@pytest.mark.parametrize(
    "text",
    [
        "",  # no quorum
        "quorum none\nquorum none\n",
        "quorum W\n",  # undefined
        f"quorum W\nwitness W {_vk(0)}\n",  # defined later
        f"witness none {_vk(0)}\nquorum none\n",
        f"witness W {_vk(0)}\nwitness W {_vk(1)}\nquorum W\n",
        f"witness A {_vk(0)}\nwitness B {_vk(0)}\nquorum A\n",  # duplicate key
        f"log {LOG.verifier.vkey()}\nlog {LOG.verifier.vkey()}\nquorum none\n",
        f"log {_vk(0)}\nquorum none\n",  # a witness (0x04) key as a log key
        f"witness W {LOG.verifier.vkey()}\nquorum W\n",  # a log (0x01) key as a witness key
        f"witness W {_vk(0)}\ngroup G 0 W\nquorum G\n",
        f"witness W {_vk(0)}\ngroup G 2 W\nquorum G\n",
        f"witness W {_vk(0)}\ngroup G 01 W\nquorum G\n",
        f"witness W {_vk(0)}\ngroup G any\nquorum G\n",
        f"witness W {_vk(0)}\ngroup G any W W\nquorum G\n",
        f"witness W {_vk(0)}\ngroup G any W\ngroup H any W\nquorum G\n",  # W in two groups
        f"witness W {_vk(0)}\ngroup G any W\ngroup G any G\nquorum G\n",
        f"witness W {_vk(0)}\ngroup W any W\nquorum W\n",
        f"witness W {_vk(0)}\ngroup G any V\nquorum G\n",
        f"witness W {_vk(0)}\ngroup none any W\nquorum none\n",
        f"witness W {_vk(0)} url extra\nquorum W\n",
        "witness W\nquorum none\n",
        f"witness W {_vk(0)}\nquorum W W\n",
        "frobnicate\nquorum none\n",
        f"witness W {_vk(0)}\r\nquorum W\n",  # CR is a control character
        f"witness W {_vk(0)}\x00\nquorum W\n",
        f"witness W {_vk(0)[:-2]}\nquorum W\n",
        "log notavkey\nquorum none\n",
    ],
)
def test_bad_policies(text: str) -> None:
    with pytest.raises(PolicyError) as err:
        Policy.parse(text)
    assert err.value.code == "bad-policy"


def test_verify_checkpoint_with_quorum_and_freshness() -> None:
    policy = Policy.parse(spec_example())
    cp = Checkpoint(ORIGIN, 1, leaf_hash(b"x"))
    base = Note.parse(sign_checkpoint(cp, [LOG]))
    good = base.with_signatures([X[0].cosign(cp.text()), X[2].cosign(cp.text(), NOW - 100), Y[1].cosign(cp.text())])
    signed = policy.verify_checkpoint(good.to_bytes(), origin=ORIGIN)
    assert policy.witnesses_of(signed) == {"X1": NOW, "X3": NOW - 100, "Y2": NOW}
    policy.verify_checkpoint(good.to_bytes(), not_before=NOW - 100)
    with pytest.raises(QuorumError) as err:
        policy.verify_checkpoint(good.to_bytes(), not_before=NOW - 99)  # X3's cosignature is too old
    assert err.value.code == "no-quorum"
    short = base.with_signatures([X[0].cosign(cp.text()), Y[1].cosign(cp.text())])
    with pytest.raises(QuorumError):
        policy.verify_checkpoint(short.to_bytes())
    with pytest.raises(QuorumError) as unknown:
        policy.verify_checkpoint(good.to_bytes(), origin="another.example/log")
    assert unknown.value.code == "unknown-log"
