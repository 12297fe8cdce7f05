"""``verify_bundle``: time against a raw ``zipfile`` + SHA-256 reader, and peak memory.

Figures (bench/README.md explains each):

- a one-article bundle of about 10 KB: time per bundle and ratio to the baseline,
  cold (verifier caches cleared: one bundle, as ``tamizdat verify`` sees it)
  and warm (the root chain cached, as a mirror verifying one publisher's
  bundles), each next to the floor no verifier can go below (the baseline plus
  the Ed25519 checks); the cold figures again for a publisher that has rotated
  its signing key twice (three root versions carried);
- a mixed bundle (90% stored random media in entries of a few MB, 10% deflated
  article HTML/JSON): ratio to the baseline and MB/s;
- peak RSS of a fresh interpreter that imports tamizdat and verifies a bigger
  mixed bundle, next to its RSS right after the imports; and the same for a
  hostile bundle (a genuine one with its manifest swapped for 1 MiB of JSON),
  which every verifier must parse before a signature can refuse it.
"""

from __future__ import annotations

import base64
import random
import sys
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tamizdat.bundles.build import BuiltBundle
from tamizdat.bundles.limits import DEFAULT_LIMITS
from tamizdat.bundles.manifest import MANIFEST_NAME, root_entry_name
from tamizdat.bundles.verify import verify_bundle
from tamizdat.bundles.zipwrite import write_zip
from tamizdat.keys.dsse import BUNDLE_TYPE, ROOT_TYPE, Envelope, pae

from .baseline import zipfile_sha256
from .common import (
    MB,
    Context,
    Publisher,
    Result,
    build_mixed,
    build_small,
    child_memory,
    compare,
    entry_stats,
    interleave,
    make_publisher,
)

RATIO_GOAL = 0.8  # verify at least 0.8x as fast as the baseline (baseline_time / verify_time)
SMALL_GOAL_MS = 1.0  # a 10 KB bundle verifies in under 1 ms
RSS_GOAL_MB = 64.0  # peak RSS of a fresh interpreter verifying the big bundle
REPO_ROOT = Path(__file__).resolve().parent.parent


def _sizes(quick: bool) -> tuple[int, int]:
    """Total content of the throughput bundle and of the memory bundle, in bytes."""
    return (10 * MB, 20 * MB) if quick else (100 * MB, 200 * MB)


def _label(n: int) -> str:
    return f"{n // MB} MB" if n >= MB else f"{n // 1000} KB"


def _check(pub: Publisher, built: BuiltBundle) -> None:
    """Both readers must succeed and agree with the manifest, or the figures mean nothing."""
    verified = verify_bundle(built.path, root_keyid=pub.root_keyid)
    digests = zipfile_sha256(built.path)
    if verified.bundle_id != built.bundle_id or any(digests[f.path] != f.sha256 for f in built.manifest.files):
        raise RuntimeError(f"{built.path.name}: the verifier and the baseline disagree with the manifest")


def _describe(ctx: Context, label: str, built: BuiltBundle) -> dict[str, int]:
    stats = entry_stats(built.path)
    ctx.note(
        f"{label} bundle: {built.size:,} bytes on disk, {stats['entries']} entries, "
        f"{stats['stored_bytes']:,} bytes stored media, {stats['deflated_bytes']:,} bytes of text "
        f"deflated to {stats['deflated_compressed']:,}"
    )
    return {"file_bytes": built.size, **stats}


def _ratio_row(name: str, verify_s: float, base_s: float, extra: dict[str, int]) -> Result:
    ratio = base_s / verify_s
    return Result(
        name=name,
        value=verify_s * 1e3,
        unit="ms",
        baseline=base_s * 1e3,
        ratio=f"{ratio:.2f}x",
        goal=f">= {RATIO_GOAL}x",
        met=ratio >= RATIO_GOAL,
        extra=extra,
    )


def signature_checks(pub: Publisher, built: BuiltBundle, *, roots: bool) -> tuple[int, Callable[[], None]]:
    """The Ed25519 checks no verifier can skip on this bundle: the manifest's, and each carried root's.

    ``roots=False`` leaves out the roots (a verifier that already trusts this
    exact chain). Returns their number and a function doing exactly them, with
    ``cryptography`` as the verifier does.
    """
    with zipfile.ZipFile(built.path) as zf:
        docs = [(zf.read(MANIFEST_NAME), BUNDLE_TYPE)]
        if roots:
            docs += [(zf.read(root_entry_name(v)), ROOT_TYPE) for v in range(1, len(pub.chain.roots) + 1)]
    keys = {pub.signer.keyid: pub.signer.public.raw}
    for root in pub.chain.roots:
        keys.update({kid: k.raw for kid, k in root.root_keys.items()})
    checks: list[tuple[bytes, bytes, bytes]] = []
    for data, payload_type in docs:
        env = Envelope.from_bytes(data, expected_type=payload_type)
        message = pae(payload_type, env.payload)
        checks.extend((keys[s.keyid], s.sig, message) for s in env.signatures if s.keyid in keys)

    def verify_all() -> None:
        for raw, sig, message in checks:
            Ed25519PublicKey.from_public_bytes(raw).verify(sig, message)

    return len(checks), verify_all


def verifier_caches() -> list[Callable[[], None]]:
    """``cache_clear`` of every functools cache defined in a loaded tamizdat module.

    Today that is the root chain cache (keys.root): verifying many bundles of
    one publisher checks its chain once. Clearing them all before each call
    gives the cold figure: one bundle, as ``tamizdat verify`` in a fresh
    process sees it.
    """
    clears = []
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("tamizdat.") or module is None:
            continue
        for value in vars(module).values():
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == module_name:
                clears.append(clear)
    return clears


def _floor_row(name: str, n_sigs: int, sigs_s: float, base_s: float) -> Result:
    floor_s = base_s + sigs_s
    return Result(
        name=f"{name}: floor (baseline + {n_sigs} sig check{'s' if n_sigs > 1 else ''})",
        value=floor_s * 1e3,
        unit="ms",
        baseline=base_s * 1e3,
        ratio=f"{base_s / floor_s:.2f}x",
        extra={"signature_checks": n_sigs, "signatures_ms": sigs_s * 1e3},
    )


def bench_small(ctx: Context, pub: Publisher, label: str, *, goals: bool) -> list[Result]:
    """A one-article bundle of about 10 KB: time per bundle, ratio, and the signature floor.

    Cold (every verifier cache cleared before each call) carries the goals when
    ``goals``; warm (caches kept, as a mirror verifying one publisher's bundles)
    is reported next to it when the verifier has caches and ``goals``.
    """
    ctx.log(f"{label} bundle: building")
    built = build_small(pub, ctx.workdir / f"small-{len(pub.chain.roots)}.zip")
    _check(pub, built)
    extra = _describe(ctx, label, built)
    clears = verifier_caches()

    def cold() -> None:
        for clear in clears:
            clear()
        verify_bundle(built.path, root_keyid=pub.root_keyid)

    fns: dict[str, Callable[[], object]] = {
        "cold": cold,
        "baseline": lambda: zipfile_sha256(built.path),
    }
    warm = goals and bool(clears)
    if warm:
        fns["warm"] = lambda: verify_bundle(built.path, root_keyid=pub.root_keyid)
    n_cold, sigs_cold = signature_checks(pub, built, roots=True)
    fns["sigs_cold"] = sigs_cold
    if warm:
        n_warm, sigs_warm = signature_checks(pub, built, roots=False)
        fns["sigs_warm"] = sigs_warm
    ctx.log(f"{label} bundle: timing")
    t = interleave(fns, repeats=max(3, 2 * ctx.repeats), min_sample_s=0.05 if ctx.quick else 0.2)
    base_s = t["baseline"]

    name = f"verify {label}, cold"
    rows = [_ratio_row(f"{name}: vs baseline", t["cold"], base_s, extra)]
    if goals:
        ms = t["cold"] * 1e3
        rows.append(
            Result(
                name=f"{name}: time per bundle",
                value=ms,
                unit="ms",
                baseline=base_s * 1e3,
                ratio=f"{base_s / t['cold']:.2f}x",
                goal=f"< {SMALL_GOAL_MS:g} ms",
                met=ms < SMALL_GOAL_MS,
                extra=extra,
            )
        )
    else:
        rows[0] = replace(rows[0], goal="-", met=None)
    rows.append(_floor_row(name, n_cold, t["sigs_cold"], base_s))
    if warm:
        name = f"verify {label}, warm"
        rows.append(replace(_ratio_row(f"{name}: vs baseline", t["warm"], base_s, extra), goal="-", met=None))
        rows.append(_floor_row(name, n_warm, t["sigs_warm"], base_s))
    return rows


def bench_large(ctx: Context, pub: Publisher, total: int) -> list[Result]:
    label = _label(total)
    ctx.log(f"{label} bundle: building")
    built = build_mixed(pub, ctx.workdir / "large.zip", media_bytes=total * 9 // 10, text_bytes=total // 10)
    _check(pub, built)
    extra = _describe(ctx, label, built)
    content = extra["stored_bytes"] + extra["deflated_bytes"]
    ctx.log(f"{label} bundle: timing")
    verify_s, base_s = compare(
        lambda: verify_bundle(built.path, root_keyid=pub.root_keyid),
        lambda: zipfile_sha256(built.path),
        repeats=ctx.repeats,
    )
    verify_mbs, base_mbs = content / verify_s / MB, content / base_s / MB
    return [
        _ratio_row(f"verify {label}: vs baseline", verify_s, base_s, extra),
        Result(
            name=f"verify {label}: throughput",
            value=verify_mbs,
            unit="MB/s",
            baseline=base_mbs,
            ratio=f"{verify_mbs / base_mbs:.2f}x",
            extra={"content_bytes": content},
        ),
    ]


def bench_rss(ctx: Context, pub: Publisher, total: int) -> list[Result]:
    label = _label(total)
    ctx.log(f"{label} bundle: building")
    built = build_mixed(pub, ctx.workdir / "memory.zip", media_bytes=total * 9 // 10, text_bytes=total // 10)
    _check(pub, built)
    extra = _describe(ctx, label, built)
    ctx.log(f"{label} bundle: peak RSS in fresh interpreters")
    mem = child_memory("verify", built.path, pub.root_keyid)
    base = child_memory("zipfile", built.path, str(REPO_ROOT))
    peak, imports = mem.peak_rss / MB, mem.imports_rss / MB
    base_peak, base_imports = base.peak_rss / MB, base.imports_rss / MB
    return [
        Result(
            name=f"peak RSS verify {label} (vs imports)",
            value=peak,
            unit="MB",
            baseline=imports,
            ratio=f"+{peak - imports:.1f} MB",
            goal=f"< {RSS_GOAL_MB:g} MB",
            met=peak < RSS_GOAL_MB,
            extra=extra,
        ),
        Result(
            name=f"peak RSS zipfile {label} (vs imports)",
            value=base_peak,
            unit="MB",
            baseline=base_imports,
            ratio=f"+{base_peak - base_imports:.1f} MB",
            extra=extra,
        ),
    ]


def hostile_manifest_bundle(pub: Publisher, out: Path) -> BuiltBundle:
    """A genuine small bundle whose ``meta/manifest.dsse.json`` is swapped for 1 MiB of JSON.

    The entry stays within the control-entry limit (step 11) and the root chain
    is the publisher's own, so every verifier parses it (step 16) before any
    signature can refuse it: one string of about 1 MB (random base64, so it does
    not deflate past the ratio limit) and 600 empty arrays. Anyone can make
    this from any published bundle; memory must stay flat on it too.
    """
    built = build_small(pub, out.with_name(f"{out.stem}-genuine.zip"))
    with zipfile.ZipFile(built.path) as zf:
        files: dict[str, bytes | Path] = {name: zf.read(name) for name in zf.namelist()}
    head, tail = b'{"filler": "', b'", "nest": [' + b",".join([b"[]"] * 600) + b"]}"
    room = DEFAULT_LIMITS.max_control_bytes - len(head) - len(tail)
    filler = base64.b64encode(random.Random(30).randbytes(room * 3 // 4))[:room]
    files[MANIFEST_NAME] = head + filler + tail
    write_zip(out, files, durable=False)
    return replace(built, path=out, size=out.stat().st_size)


def bench_rss_hostile(ctx: Context, pub: Publisher) -> list[Result]:
    ctx.log("hostile 1 MiB manifest: peak RSS in a fresh interpreter")
    built = hostile_manifest_bundle(pub, ctx.workdir / "hostile.zip")
    mem = child_memory("verify", built.path, pub.root_keyid)
    if not mem.outcome.startswith("rejected"):
        raise RuntimeError(f"the hostile bundle was not rejected: {mem.outcome}")
    ctx.note(
        f"hostile bundle: {built.size:,} bytes on disk, a {DEFAULT_LIMITS.max_control_bytes:,}-byte manifest entry "
        f"(one long string, 600 arrays); {mem.outcome}"
    )
    peak, imports = mem.peak_rss / MB, mem.imports_rss / MB
    return [
        Result(
            name="peak RSS verify hostile 1 MiB manifest (vs imports)",
            value=peak,
            unit="MB",
            baseline=imports,
            ratio=f"+{peak - imports:.1f} MB",
            goal=f"< {RSS_GOAL_MB:g} MB",
            met=peak < RSS_GOAL_MB,
            extra={"file_bytes": built.size, "outcome": mem.outcome},
        )
    ]


def run(ctx: Context) -> list[Result]:
    pub = make_publisher(ctx.workdir / "keys")
    rotated = make_publisher(ctx.workdir / "keys-rotated", rotations=2)
    large, memory = _sizes(ctx.quick)
    return [
        *bench_small(ctx, pub, "10 KB", goals=True),
        *bench_small(ctx, rotated, "10 KB, 3 roots", goals=False),
        *bench_large(ctx, pub, large),
        *bench_rss(ctx, pub, memory),
        *bench_rss_hostile(ctx, pub),
    ]
