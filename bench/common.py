"""Shared pieces of the benchmarks: results, timing, machine info, fixed-seed fixtures.

Every figure is a median of several runs and is compared with a baseline
measured in the same run on the same input, so the figures travel between
machines as ratios. Nothing here asserts speed: tests never do.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tamizdat.bundles.build import BuiltBundle, build_bundle
from tamizdat.bundles.content import ArticleInput, BundleInput, NoticeInput, SectionInput
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import RootChain

MB = 1_000_000  # figures use decimal megabytes (MB, MB/s)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SEEDS = [bytes([1]) * 32, bytes([2]) * 32]


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One line of the table: a figure, its same-run baseline and its goal."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: str = "-"
    goal: str = "-"
    met: bool | None = None  # None: informational, no goal
    extra: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        met = "-" if self.met is None else ("yes" if self.met else "NO")
        base = "-" if self.baseline is None else fmt(self.baseline, self.unit)
        return [self.name, fmt(self.value, self.unit), base, self.ratio, self.goal, met]


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"
    if unit in ("MB/s", "MB"):
        return f"{value:.1f} {unit}"
    return f"{value:g} {unit}".strip()


def table(results: Sequence[Result]) -> str:
    """A plain-text table: name | tamizdat | baseline | ratio | goal | met?"""
    rows = [["name", "tamizdat", "baseline", "ratio", "goal", "met?"], *(r.cells() for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class Context:
    """What every benchmark module's ``run`` receives."""

    quick: bool
    workdir: Path  # inside the runner's TemporaryDirectory, removed at the end
    repeats: int  # timed rounds per figure (the median is reported)
    notes: list[str] = field(default_factory=list)  # fixture descriptions printed under the table

    def log(self, message: str) -> None:
        """Progress on stderr (the table goes to stdout)."""
        print(f"  .. {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        self.notes.append(message)


# -- machine -------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": usable,
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


# -- timing --------------------------------------------------------------------------------------


def _sample(fn: Callable[[], object], inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def calibrate(fn: Callable[[], object], min_sample_s: float) -> int:
    """How many calls make one sample last at least ``min_sample_s`` (after one warm-up call)."""
    fn()
    one = _sample(fn, 1)
    return max(1, int(min_sample_s / max(one, 1e-9)) + 1)


def interleave(
    fns: dict[str, Callable[[], object]],
    *,
    repeats: int,
    min_sample_s: float = 0.0,
) -> dict[str, float]:
    """Median seconds per call of each function, all measured round by round in the same run.

    Every round samples each function once, in an order that rotates from round
    to round, so drift in CPU frequency, other load or page cache hits all
    alike. Small inputs are looped so one sample lasts at least
    ``min_sample_s``; the garbage collector stays on, as in real use.
    """
    inner = {name: calibrate(fn, min_sample_s) for name, fn in fns.items()}
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        gc.collect()
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_sample(fns[name], inner[name]))
    return {name: statistics.median(values) for name, values in times.items()}


def compare(
    subject: Callable[[], object],
    baseline: Callable[[], object],
    *,
    repeats: int,
    min_sample_s: float = 0.0,
) -> tuple[float, float]:
    """Median seconds per call of ``subject`` and ``baseline``, interleaved in the same run (see interleave)."""
    medians = interleave({"subject": subject, "baseline": baseline}, repeats=repeats, min_sample_s=min_sample_s)
    return medians["subject"], medians["baseline"]


def measure(fn: Callable[[], object], *, repeats: int, min_sample_s: float = 0.0) -> float:
    """Median seconds per call of ``fn`` alone (for figures that have no baseline of their own)."""
    inner = calibrate(fn, min_sample_s)
    times = []
    for _ in range(repeats):
        gc.collect()
        times.append(_sample(fn, inner))
    return statistics.median(times)


# -- peak memory in a fresh interpreter ------------------------------------------------------------

_RSS_CHILD = r"""
import json, resource, sys

def mem():
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out[key] = int(rest.split()[0]) * 1024
    except OSError:  # no /proc: ru_maxrss, which also counts the parent's RSS at the fork
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out = {"VmHWM": peak, "VmRSS": peak}
    return out

mode, path, arg = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "verify":
    from tamizdat.bundles.verify import verify_bundle
    from tamizdat.errors import RejectedError
    after_imports = mem()
    try:
        done = "valid " + verify_bundle(path, root_keyid=arg).bundle_id
    except RejectedError as exc:
        done = f"rejected {exc.code}"
else:
    sys.path.insert(0, arg)
    from bench.baseline import zipfile_sha256
    after_imports = mem()
    done = len(zipfile_sha256(path))
print(json.dumps({"imports": after_imports, "end": mem(), "done": str(done)}))
"""


@dataclass(frozen=True)
class ChildMemory:
    imports_rss: int  # bytes: peak resident set right after the imports, before any work
    peak_rss: int  # bytes: peak resident set of the whole child, at its end
    outcome: str  # "valid <bundle id>", "rejected <code>" or, for the baseline, the number of entries read


def child_memory(mode: str, path: Path, arg: str) -> ChildMemory:
    """Run one verification (``verify``) or baseline read (``zipfile``) in a fresh interpreter.

    The child reads its own ``VmHWM``, which starts afresh at exec. ``ru_maxrss``
    (``RUSAGE_SELF`` in the child or ``RUSAGE_CHILDREN`` here) is no use: Linux
    carries it across fork and exec, so it reports at least this parent's RSS
    at the fork (92 MB instead of 39 MB after building the 200 MB fixture).
    """
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, mode, str(path), arg],
        check=True,
        capture_output=True,
        text=True,
    )
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    return ChildMemory(doc["imports"]["VmHWM"], doc["end"]["VmHWM"], doc["done"])


# -- fixtures: keys and bundles --------------------------------------------------------------------


@dataclass(frozen=True)
class Publisher:
    keydir: KeyDir
    signer: SigningKey
    chain: RootChain
    root_keyid: str
    now: dt.datetime  # bundles are created at this time (inside the signer's window)


def make_publisher(path: Path, *, rotations: int = 0) -> Publisher:
    """A key directory with fixed-seed keys (one root key, one signing key) created at NOW.

    ``rotations`` adds root versions (``keys rotate-signing``, one day apart), as
    a publisher accumulates them; the new online keys are random, which changes
    no timing.
    """
    kd = KeyDir(path)
    kd.init("Bench", seeds=SEEDS, now=NOW)
    for day in range(1, rotations + 1):
        kd.rotate_signing(now=NOW + dt.timedelta(days=day))
    now = NOW + dt.timedelta(days=rotations)
    return Publisher(kd, kd.signer("bundle", at=now), kd.chain(), kd.root_keyid(), now)


_EN_WORDS = (
    "the government court said report city people election minister police protest news year "
    "official state law journalist week country said after before during against independent "
    "according sources investigation regional council budget water prices energy winter school "
    "hospital doctors workers factory river border village families children elders statement "
    "evidence documents archive published interview detained released appeal hearing judge "
    "parliament vote opposition ruling party coalition reform tax salary pension inflation"
)
_RU_WORDS = (
    "суд заявил власти город люди выборы министр полиция протест новости год чиновник закон "
    "журналист неделя страна после перед против независимый источники расследование совет "
    "бюджет вода цены энергия зима школа больница врачи рабочие завод река граница деревня "
    "семьи дети заявление доказательства документы архив интервью задержан освобождён апелляция"
)
_EN, _RU = _EN_WORDS.split(), _RU_WORDS.split()


def _paragraph(rng: random.Random, words: list[str], n_words: int) -> str:
    out = []
    for i in range(n_words):
        w = rng.choice(words)
        r = rng.random()
        if r < 0.02:
            w = f"**{w}**"
        elif r < 0.03:
            w = f"[{w}](https://example.org/{rng.choice(_EN)}/{rng.randrange(10**6)})"
        out.append(w.capitalize() if i == 0 else w)
        if rng.random() < 0.08:
            out[-1] += "."
    return " ".join(out) + "."


def markdown_text(rng: random.Random, lang: str, n_chars: int) -> str:
    """Realistic-ish Markdown (paragraphs, emphasis, links, a list) of about ``n_chars`` characters."""
    words = _RU if lang == "ru" else _EN
    parts: list[str] = []
    size = 0
    while size < n_chars:
        if rng.random() < 0.1:
            block = "\n".join(f"- {_paragraph(rng, words, rng.randint(4, 12))}" for _ in range(rng.randint(2, 5)))
        else:
            block = _paragraph(rng, words, rng.randint(30, 90))
        parts.append(block)
        size += len(block) + 2
    return "\n\n".join(parts)


def _article(rng: random.Random, n: int, body_chars: int, n_sections: int) -> ArticleInput:
    lang = "ru" if n % 3 == 0 else "en"
    words = _RU if lang == "ru" else _EN
    per_part = max(200, body_chars // (n_sections + 1))
    return ArticleInput(
        id=f"article-{n}",
        lang=lang,
        title=_paragraph(rng, words, 8)[:120],
        body=markdown_text(rng, lang, per_part),
        published=NOW - dt.timedelta(days=1, minutes=n),
        summary=_paragraph(rng, words, 25),
        byline="Bench Desk",
        sections=tuple(
            SectionInput(_paragraph(rng, words, 4)[:80], markdown_text(rng, lang, per_part)) for _ in range(n_sections)
        ),
    )


_NOTICE = NoticeInput(
    "notice",
    ("BY", "RU"),
    {"en": "Keeping this file may be risky where you are.", "ru": "Хранить этот файл может быть опасно."},
)


def build_small(pub: Publisher, out: Path, body_chars: int = 9_000) -> BuiltBundle:
    """A one-article bundle (about 10 KB on disk with the default body)."""
    rng = random.Random(10)
    inp = BundleInput(articles=(_article(rng, 1, body_chars, 1),), notices=(_NOTICE,))
    return build_bundle(inp, signer=pub.signer, chain=pub.chain, out=out, created=pub.now, durable=False)


def build_mixed(
    pub: Publisher,
    out: Path,
    *,
    media_bytes: int,
    text_bytes: int,
    media_entry_bytes: int = 3 * MB,
    article_text_bytes: int = 100_000,
) -> BuiltBundle:
    """An edition: stored media of random bytes plus deflated article HTML/JSON.

    ``text_bytes`` is the approximate uncompressed size of all article pages and
    data (each article's HTML and JSON together weigh about 2.85 times its Markdown).
    Media files are written next to ``out`` and passed through ``extra_files``.
    """
    rng = random.Random(20)
    n_articles = max(1, min(1000, text_bytes // article_text_bytes))
    body_chars = max(1_000, int(text_bytes / n_articles / 2.85))  # HTML + JSON weigh ~2.85x the Markdown
    articles = tuple(_article(rng, n, body_chars, 3) for n in range(1, n_articles + 1))
    media_dir = out.parent / f"{out.stem}-media"
    media_dir.mkdir(parents=True, exist_ok=True)
    extra: dict[str, bytes | Path] = {}
    left, i = media_bytes, 0
    while left > 0:
        size = min(media_entry_bytes, left)
        data = rng.randbytes(size)
        src = media_dir / f"{i}.bin"
        src.write_bytes(data)
        extra[f"media/{hashlib.sha256(data).hexdigest()[:16]}.jpg"] = src
        left -= size
        i += 1
    inp = BundleInput(articles=articles, notices=(_NOTICE,), title="Bench edition")
    return build_bundle(
        inp, signer=pub.signer, chain=pub.chain, out=out, created=pub.now, durable=False, extra_files=extra
    )


def entry_stats(path: Path) -> dict[str, int]:
    """Entries, and uncompressed bytes by method, to describe a fixture in the output."""
    stats = {"entries": 0, "stored_bytes": 0, "deflated_bytes": 0, "deflated_compressed": 0}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            stats["entries"] += 1
            if info.compress_type == zipfile.ZIP_STORED:
                stats["stored_bytes"] += info.file_size
            else:
                stats["deflated_bytes"] += info.file_size
                stats["deflated_compressed"] += info.compress_size
    return stats


def to_json(results: Sequence[Result], meta: dict[str, Any]) -> str:
    return json.dumps({**meta, "results": [asdict(r) for r in results]}, indent=2, ensure_ascii=False)
