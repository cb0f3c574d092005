"""Prepared speech data: manifests with output units (stage 0), features on disk (stage 1), batches.

Usage: aics asr prepare --src data/asr/corpus --out data/asr/prepared && aics asr features --data
data/asr/prepared --out data/asr/feats

``prepare`` reads a corpus in its own layout (LJSpeech, LibriTTS, LibriSpeech, THCHS-30; see corpora.py),
maps every transcript to output units (English characters, or THCHS-30's tonal pinyin syllables) and writes
one manifest per subset (``<subset>.jsonl``: id, wav, speaker, text, units, seconds) plus ``units.txt``
(index 0 is the CTC blank). ``features`` computes the features of every utterance once: ``<subset>.npy``
holds all frames of the subset (float16, read memory-mapped), ``<subset>.offsets.npy`` where each utterance
starts, and ``features.json`` the exact settings, which training records and decoding reuses.
"""

from __future__ import annotations

import random
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl, save_npy, write_json, write_jsonl, write_text
from aics.core.stage import begin_stage, done_info, is_done, mark_done, require_done

BLANK_UNIT = "<blank>"
SPACE_UNIT = "<space>"  # how " " is written in units.txt (one unit per line)
UNIT_KINDS = ("char", "pinyin")
FEATURES_FILE = "features.json"


# ------------------------------------------------------------------------------------------ output units
def english_units() -> list[str]:
    from aics.tasks.asr.text import ENGLISH_CHARS

    return [BLANK_UNIT, *sorted(ENGLISH_CHARS)]


def write_units(path: Path, units: list[str]) -> None:
    write_text(path, "".join(f"{SPACE_UNIT if u == ' ' else u}\n" for u in units))


def read_units(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: not found; it is written by `aics asr prepare`")
    units = [" " if u == SPACE_UNIT else u for u in path.read_text(encoding="utf-8").splitlines()]
    if not units or units[0] != BLANK_UNIT:
        raise UserError(f"{path}: line 1 must be {BLANK_UNIT} (the CTC blank); re-run `aics asr prepare`")
    return units


def to_units(text: str, kind: str, syllables: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """The unit sequence of one transcript: its characters, or its pinyin syllables."""
    if kind == "char":
        return list(asr_transcript(text))
    return list(syllables or ())


def units_text(units: list[str], kind: str) -> str:
    """A unit sequence as text: characters joined (runs of spaces, which CTC can emit as space, blank,
    space, made one), syllables separated by spaces."""
    return " ".join("".join(units).split()) if kind == "char" else " ".join(units)


# ------------------------------------------------------------------------------------------ stage 0
def _source(u) -> str:
    return u.source or str(u.wav)


# Punctuation a transcript may carry (LJSpeech's and LibriTTS's normalised text keep it): removed for
# recognition. Anything else outside the units (digits, accented letters) is reported, not guessed.
_DROP = str.maketrans(
    {c: " " for c in '.,;:!?"()[]{}-\u2013\u2014\u2018\u201c\u201d/&*_~`'} | {"\u2019": "'"}
)


def asr_transcript(text: str) -> str:
    """What a recogniser of English characters should output for a transcript: lowercase, accents and
    punctuation removed (apostrophes inside words kept), single spaces. Digits and other scripts stay, so
    that prepare reports them rather than guessing how they are read."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c)).translate(_DROP)
    words = [w.strip("'") for w in text.split()]
    return " ".join(w for w in words if w)


def build_manifest(utts, kind: str, allowed: set[str] | None) -> tuple[list[dict], list[str]]:
    """Manifest rows of one subset and the problems found (file and line in each)."""
    rows, problems = [], []
    for u in utts:
        units = to_units(u.text, kind, u.units)
        if not units:
            problems.append(
                f"{_source(u)}: utterance {u.id} has an empty transcript; add its text or drop it"
            )
            continue
        if allowed is not None:
            bad = sorted({c for c in units if c not in allowed})
            if bad:
                shown = "".join(bad) if kind == "char" else " ".join(bad)
                problems.append(
                    f"{_source(u)}: utterance {u.id} has units outside the output units ({shown!r}); "
                    "normalise the transcript (lowercase a-z, apostrophe, space)"
                    if kind == "char"
                    else f"{_source(u)}: utterance {u.id} has syllables {shown!r} outside the output units"
                )
                continue
        rows.append(
            {"id": u.id, "wav": str(Path(u.wav).resolve()), "speaker": u.speaker,
             "text": units_text(units, kind), "units": units, "source": _source(u)}
        )  # fmt: skip
    return rows, problems


def raise_problems(problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise UserError(problems[0] + more)


def split_off(utts: list, valid_frac: float, test_frac: float, seed: int) -> dict[str, list]:
    """train/dev/test for a corpus without subsets (LJSpeech): a seeded shuffle of its utterances."""
    order = list(utts)
    random.Random(seed).shuffle(order)
    n_dev, n_test = round(len(order) * valid_frac), round(len(order) * test_frac)
    if len(order) - n_dev - n_test < 1:
        raise UserError(f"{len(order)} utterances leave none for training; lower --valid-frac/--test-frac")
    return {
        "dev": sorted(order[:n_dev], key=lambda u: u.id),
        "test": sorted(order[n_dev : n_dev + n_test], key=lambda u: u.id),
        "train": sorted(order[n_dev + n_test :], key=lambda u: u.id),
    }


def read_subsets(src: Path, fmt: str) -> dict[str, list]:
    """The utterances of a corpus by subset (LibriTTS/LibriSpeech directories, THCHS-30 splits); a corpus
    without subsets (LJSpeech) comes back as ``{"all": [...]}``."""
    from aics.tasks.asr import corpora

    if fmt == "thchs30":
        return {s: corpora.read_thchs30(src, split=s) for s in corpora.THCHS30_SPLITS}
    utts = corpora.read_corpus(src, fmt)
    if fmt == "ljspeech":
        return {"all": utts}
    out: dict[str, list] = {}
    for u in utts:
        out.setdefault(u.extra.get("subset") or "all", []).append(u)
    return out


def prepare(
    src: str | Path,
    out: str | Path,
    fmt: str = "auto",
    units: str = "auto",
    train_set: str = "train",
    valid_frac: float = 0.05,
    test_frac: float = 0.05,
    seed: int = 0,
    workers: int = 2,
    overwrite: bool = False,
) -> dict:
    """Validate a corpus, choose its output units, and write one manifest per subset."""
    from aics.tasks.asr import corpora

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise UserError(f"{src}: no such directory; pass the corpus folder (`aics asr synth` writes one)")
    fmt = corpora.detect_format(src) if fmt == "auto" else fmt
    kind = ("pinyin" if fmt == "thchs30" else "char") if units == "auto" else units
    if kind == "pinyin" and fmt != "thchs30":
        raise UserError(f"{src}: pinyin units need THCHS-30 transcripts; use --units char for {fmt}")
    params = {"src": str(src.resolve()), "format": fmt, "units": kind, "train_set": train_set,
              "valid_frac": valid_frac, "test_frac": test_frac, "seed": seed}  # fmt: skip
    if not overwrite and is_done(out) and done_info(out).get("params") == params:
        begin_stage(out, False, what="prepare", params=params)  # says it is done already
        return read_json(out / "stats.json")
    subsets = read_subsets(src, fmt)
    if set(subsets) == {"all"}:
        subsets = split_off(subsets["all"], valid_frac, test_frac, seed)
    if train_set not in subsets:
        raise UserError(
            f"{src}: has no subset {train_set!r} (found {', '.join(sorted(subsets))}); pick --train-set"
        )
    every = [u for us in subsets.values() for u in us]
    durations = corpora.check_audio(every, workers=workers)
    seconds = dict(zip((str(Path(u.wav).resolve()) for u in every), durations, strict=True))
    if kind == "char":
        unit_list = english_units()
    else:  # every syllable of the corpus: a test syllable unseen in training is an error, not a crash
        unit_list = [BLANK_UNIT, *sorted({s for us in subsets.values() for u in us for s in (u.units or ())})]
    allowed = set(unit_list[1:])
    manifests, problems = {}, []
    for name, utts in sorted(subsets.items()):
        manifests[name], found = build_manifest(utts, kind, allowed)
        problems += found
    raise_problems(problems)  # before anything is written
    if not begin_stage(out, overwrite, what="prepare", params=params):
        return read_json(out / "stats.json")
    stats: dict = {**params, "n_units": len(unit_list), "subsets": {}}
    for name, rows in manifests.items():
        for r in rows:
            r["seconds"] = round(seconds[r["wav"]], 3)
        write_jsonl(out / f"{name}.jsonl", rows)
        stats["subsets"][name] = {
            "utterances": len(rows),
            "speakers": len({r["speaker"] for r in rows}),
            "hours": round(sum(r["seconds"] for r in rows) / 3600, 4),
        }
    write_units(out / "units.txt", unit_list)
    write_json(out / "stats.json", stats)
    mark_done(out, {"units": kind, "n_units": len(unit_list)}, params=params)
    return stats


def check_prepared(data_dir: str | Path) -> Path:
    return require_done(data_dir, "prepare", "run `aics asr prepare --src CORPUS --out DIR` first")


def check_features(feats_dir: str | Path) -> Path:
    return require_done(feats_dir, "features", "run `aics asr features --data PREPARED --out DIR` first")


# ------------------------------------------------------------------------------------------ stage 1
def extractor(fc):
    """The feature extractor of a FeatureConfig (a dataclass or its dict)."""
    from aics.core.audio import FeatureExtractor

    f = fc if isinstance(fc, dict) else asdict(fc)
    if f["kind"] == "logmel":
        return FeatureExtractor(
            kind="logmel", sr=f["sample_rate"], n_fft=f["n_fft"], hop_length=f["hop"], n_mels=f["n_mels"],
            log="ln",
        )  # fmt: skip
    return FeatureExtractor(
        kind="logspec", sr=f["sample_rate"], n_fft=f["n_fft"], hop_length=f["hop"], log="ln"
    )


def feature_dim(fc) -> int:
    f = fc if isinstance(fc, dict) else asdict(fc)
    if f["kind"] == "logmel":
        return f["n_mels"]
    bins = f["n_fft"] // 2 + 1
    return min(bins, f["max_bins"]) if f["max_bins"] else bins


def features_of(wav, fc, ex=None):
    """(T, D) float32 features of one waveform (T samples at fc's rate), normalised as configured."""
    import torch

    f = fc if isinstance(fc, dict) else asdict(fc)
    ex = ex or extractor(f)
    with torch.no_grad():
        x = ex(wav.unsqueeze(0))[0]  # (frames, bins)
    x = x[:, : feature_dim(f)]
    if f["normalize"] == "utterance":
        x = (x - x.mean(0, keepdim=True)) / (x.std(0, keepdim=True, unbiased=False) + 1e-5)
    return x


def _extract_chunk(args) -> list[np.ndarray]:
    import torch

    from aics.core.audio import read_wav

    torch.set_num_threads(1)
    wavs, fc = args
    ex = extractor(fc)
    out = []
    for w in wavs:
        wav, _ = read_wav(w, sr=fc["sample_rate"])
        out.append(features_of(wav, fc, ex).numpy().astype(np.float16))
    return out


def compute_features(
    data_dir: str | Path, out: str | Path, fc, workers: int = 2, overwrite: bool = False, show_progress=True
) -> dict:
    """Stage 1: features of every subset of a prepared dir, memory-mappable, with their settings."""
    from aics.core.log import progress

    data_dir, out = check_prepared(data_dir), Path(out)
    f = fc if isinstance(fc, dict) else asdict(fc)
    params = {"data": str(data_dir.resolve()), "features": f}
    if not begin_stage(out, overwrite, what="features", params=params):
        return read_json(out / FEATURES_FILE)
    subsets = sorted(p.stem for p in data_dir.glob("*.jsonl"))
    dim = feature_dim(f)
    info: dict = {"features": f, "dim": dim, "units": "units.txt", "subsets": {}, "data": str(data_dir)}
    write_text(out / "units.txt", (data_dir / "units.txt").read_text(encoding="utf-8"))
    prepared = read_json(data_dir / "stats.json")
    info["unit_kind"] = prepared["units"]
    manifests = {s: read_jsonl(data_dir / f"{s}.jsonl") for s in subsets}
    bar = progress(total=sum(map(len, manifests.values())), desc="features", enabled=show_progress)
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for s, rows in manifests.items():
            chunks = [[r["wav"] for r in rows[i : i + 16]] for i in range(0, len(rows), 16)]
            arrays: list[np.ndarray] = []
            for part in (pool.map if pool else map)(_extract_chunk, [(c, f) for c in chunks]):
                arrays += part
                bar.update(len(part))
            lengths = np.array([len(a) for a in arrays], dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            feats = np.concatenate(arrays) if arrays else np.zeros((0, dim), np.float16)
            save_npy(out / f"{s}.npy", feats)
            save_npy(out / f"{s}.offsets.npy", offsets)
            write_jsonl(
                out / f"{s}.jsonl", [{**r, "frames": int(n)} for r, n in zip(rows, lengths, strict=True)]
            )
            info["subsets"][s] = {"utterances": len(rows), "frames": int(offsets[-1])}
    finally:
        if pool is not None:
            pool.shutdown()
    bar.close()
    write_json(out / FEATURES_FILE, info)
    mark_done(out, {"dim": dim}, params=params)
    return info


# ------------------------------------------------------------------------------------------ batches
class FeatureSet:
    """The utterances of one subset of a features dir: (index, feats (T, D) float32, unit ids)."""

    def __init__(self, feats_dir: str | Path, subset: str, units: list[str], max_frames: int = 0):
        feats_dir = Path(feats_dir)
        path = feats_dir / f"{subset}.npy"
        if not path.is_file():
            found = ", ".join(sorted(p.stem for p in feats_dir.glob("*.jsonl"))) or "none"
            raise UserError(f"{feats_dir}: has no subset {subset!r} (found: {found}); check the subset name")
        self.feats = np.load(path, mmap_mode="r", allow_pickle=False)
        self.offsets = np.load(feats_dir / f"{subset}.offsets.npy", allow_pickle=False)
        self.rows = read_jsonl(feats_dir / f"{subset}.jsonl")
        index = {u: i for i, u in enumerate(units)}
        self.targets = [[index[u] for u in r["units"]] for r in self.rows]
        self.lengths = np.diff(self.offsets)
        keep = range(len(self.rows))
        if max_frames:
            keep = [i for i in keep if self.lengths[i] <= max_frames]
        self.keep = list(keep)

    def __len__(self) -> int:
        return len(self.keep)

    def item(self, i: int):
        import torch

        j = self.keep[i]
        x = torch.from_numpy(np.asarray(self.feats[self.offsets[j] : self.offsets[j + 1]], dtype=np.float32))
        return j, x, self.targets[j]

    def __getitem__(self, i: int):
        return self.item(i)


def _stretch_time(x, frames: int):
    """``x`` (T, D) linearly resampled to ``frames`` frames, the first and last kept in place."""
    import torch.nn.functional as F

    return F.interpolate(x.T[None], size=frames, mode="linear", align_corners=True)[0].T.contiguous()


def spec_augment(x, sa, gen):
    """One utterance's features (T, D) augmented: optionally stretched in time (speed) and warped in
    frequency, then random frequency bands and time spans masked (to 0: the mean of features normalised per
    utterance). Returns the new tensor; ``x`` itself may be changed in place."""
    import torch

    def factor(r: float) -> float:
        return 1.0 + r * (2 * float(torch.rand((), generator=gen)) - 1)

    if sa.speed > 0:
        x = _stretch_time(x, max(1, round(x.shape[0] / factor(sa.speed))))
    if sa.warp > 0:
        # the spectrum moved up or down by a factor: bins above the top are cut, missing ones repeat the top
        d, a = x.shape[1], factor(sa.warp)
        src = torch.clamp(torch.arange(d, dtype=x.dtype) / a, max=d - 1)
        lo = src.floor().long()
        hi = torch.clamp(lo + 1, max=d - 1)
        w = src - lo
        x = x[:, lo] * (1 - w) + x[:, hi] * w
    t, d = x.shape
    for _ in range(sa.freq_masks):
        w = int(torch.randint(0, sa.freq_width + 1, (), generator=gen))
        if 0 < w < d:
            f0 = int(torch.randint(0, d - w + 1, (), generator=gen))
            x[:, f0 : f0 + w] = 0
    limit = min(sa.time_width, int(sa.time_ratio * t))
    for _ in range(sa.time_masks):
        w = int(torch.randint(0, limit + 1, (), generator=gen))
        if 0 < w < t:
            t0 = int(torch.randint(0, t - w + 1, (), generator=gen))
            x[t0 : t0 + w] = 0
    return x


class Collate:
    """Pads a batch: feats (B, T, D), lengths (B,), targets (sum L,), target_lengths (B,), indices (B,).

    SpecAugment draws from a generator seeded by (seed, epoch, utterance), never from the global RNG, so a
    resumed run masks exactly what an uninterrupted one would.
    """

    def __init__(self, specaugment=None, seed: int = 0):
        self.sa, self.seed, self.epoch = specaugment, seed, 0

    def __call__(self, items):
        import torch

        from aics.core.loader import epoch_seed

        idx = [i for i, _, _ in items]
        xs = [x for _, x, _ in items]
        if self.sa is not None and self.sa.enabled:
            xs = [
                spec_augment(
                    x.clone(),
                    self.sa,
                    torch.Generator().manual_seed(epoch_seed(self.seed * 1_000_003 + i, self.epoch)),
                )
                for i, x in zip(idx, xs, strict=True)
            ]
        lengths = torch.tensor([len(x) for x in xs])
        feats = torch.zeros(len(items), int(lengths.max()), xs[0].shape[1])
        for b, x in enumerate(xs):
            feats[b, : len(x)] = x
        targets = torch.tensor([t for _, _, ts in items for t in ts], dtype=torch.long)
        target_lengths = torch.tensor([len(ts) for _, _, ts in items])
        return feats, lengths, targets, target_lengths, torch.tensor(idx)
