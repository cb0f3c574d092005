"""DCASE2018 task 4 data: metadata readers and validation (stage 0), log-mel features (stage 1), batches.

Stage 0 (``prepare``) reads the dataset's own layout (``labels.py``): the weak tags, the unlabelled list and
the strong test / eval labels. Every row is checked (header, field count, known class, onset < offset) and
every listed clip must have a readable wav; all problems are reported together as one line with file and
line. Clips listed but missing are reported together too (the real set lost clips that were deleted from
YouTube): rerun with ``--allow-missing`` to drop them, recorded in ``missing.txt``. The prepared dir holds
one ``<split>.jsonl`` per split and ``clips.json``: each split's exact clip list and its SHA-256, which every
score repeats.

Stage 1 (``compute_features``) writes ``<split>.npy`` (clips, frames, n_mels) float16 log-mel (dB) of each
clip cut or padded to ``clip_seconds``, and ``features.json`` with the settings and the per-band mean and
standard deviation of the training split, which ``SedSet`` applies.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from aics.core.errors import UserError, raise_problems
from aics.core.io import read_json, read_jsonl, save_npy, write_json, write_jsonl, write_text
from aics.core.stage import begin_stage, mark_done, require_done
from aics.tasks.sed.labels import (
    AUDIO_DIRS,
    CLASSES,
    METADATA,
    STRONG_HEADER,
    UNLABELLED_HEADER,
    WEAK_HEADER,
)

FEATURES_FILE = "features.json"
CLIPS_FILE = "clips.json"
KINDS = {"weak": "weak", "unlabel_in_domain": "unlabelled", "test": "strong", "eval": "strong"}
HEADERS = {"weak": WEAK_HEADER, "unlabelled": UNLABELLED_HEADER, "strong": STRONG_HEADER}
REQUIRED = ("weak", "test")


# ------------------------------------------------------------------------------------------ metadata
def _number(text: str, where: str, what: str, problems: list[str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{where}: {what} {text!r} is not a number")
        return None
    if not math.isfinite(value) or value < 0:
        problems.append(f"{where}: {what} {text!r} must be a finite number of seconds >= 0")
        return None
    return value


def _label(text: str, where: str, problems: list[str]) -> str | None:
    label = text.strip()
    if label not in CLASSES:
        problems.append(f"{where}: unknown class {label!r} (the classes: {', '.join(CLASSES)})")
        return None
    return label


def read_metadata(path: str | Path, kind: str) -> tuple[dict[str, dict], list[str]]:
    """One metadata file -> (filename -> {"labels": [...], "events": [[on, off, label], ...]}, problems).

    ``kind``: weak (filename, comma-separated tags), unlabelled (filename) or strong (filename, onset,
    offset, event_label: one row per event; a row with only the filename is a clip without events)."""
    path = Path(path)
    header = HEADERS[kind]
    clips: dict[str, dict] = {}
    problems: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        return {}, [f"{path}: not UTF-8 text (byte {e.start}); save it as tab-separated UTF-8 text"]
    if not lines or tuple(c.strip() for c in lines[0].split("\t")) != header:
        got = lines[0] if lines else "an empty file"
        return {}, [f"{path}:1: expected the tab-separated header {' '.join(header)!r}, found {got!r}"]
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        fields = line.split("\t")
        name = fields[0].strip()
        if not name.endswith(".wav"):
            problems.append(f"{where}: {name!r} is not a .wav file name")
            continue
        if kind == "strong":
            rest = [f.strip() for f in fields[1:]]
            clip = clips.setdefault(name, {"labels": [], "events": []})
            if not any(rest):  # the clip has no events
                continue
            if len(fields) != 4:
                problems.append(
                    f"{where}: expected 4 tab-separated fields ({', '.join(header)}), found {len(fields)}"
                )
                continue
            onset = _number(rest[0], where, "onset", problems)
            offset = _number(rest[1], where, "offset", problems)
            label = _label(rest[2], where, problems)
            if onset is None or offset is None or label is None:
                continue
            if onset >= offset:
                problems.append(f"{where}: onset {onset:g} s is not before offset {offset:g} s")
                continue
            clip["events"].append([onset, offset, label])
            if label not in clip["labels"]:
                clip["labels"].append(label)
            continue
        if name in clips:
            problems.append(f"{where}: {name} is listed twice")
            continue
        if kind == "unlabelled":
            clips[name] = {"labels": [], "events": []}
            continue
        if len(fields) != 2 or not fields[1].strip():
            problems.append(f"{where}: expected a filename and its comma-separated event labels")
            continue
        # comma-separated in the released weak.csv; the task's readme shows semicolons: take either
        labels = [_label(t, where, problems) for t in fields[1].replace(";", ",").split(",") if t.strip()]
        if None in labels:
            continue
        clips[name] = {"labels": sorted(set(labels), key=CLASSES.index), "events": []}
    return clips, problems


def clip_list_hash(names: list[str]) -> str:
    """SHA-256 of a split's sorted clip names, one per line: which clips a score was computed on."""
    return hashlib.sha256("".join(f"{n}\n" for n in sorted(names)).encode()).hexdigest()


def prepare(root: str | Path, out: str | Path, allow_missing: bool = False, overwrite: bool = False) -> dict:
    """Stage 0: validate a DCASE2018 task 4 dataset dir and write one manifest per split."""
    from aics.core.audio import audio_info

    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise UserError(f"{root}: no such dataset directory; run `aics sed synth` or the download script")
    found = [s for s in METADATA if (root / METADATA[s]).is_file()]
    lacking = [METADATA[s] for s in REQUIRED if s not in found]
    if lacking:
        raise UserError(
            f"{root}: has no {' or '.join(lacking)}; expected the DCASE2018 task 4 layout "
            "(metadata/ and audio/; see scripts/download_dcase2018_task4.sh)"
        )
    problems: list[str] = []
    splits: dict[str, dict[str, dict]] = {}
    for s in found:
        splits[s], found_problems = read_metadata(root / METADATA[s], KINDS[s])
        problems += found_problems
    raise_problems(problems, "fix or remove those rows")
    missing: list[str] = []
    for s, clips in splits.items():
        for name, clip in clips.items():
            wav = root / AUDIO_DIRS[s] / name
            clip["wav"] = str(wav.resolve())
            if not wav.is_file():
                missing.append(f"{AUDIO_DIRS[s]}/{name}")
                continue
            try:
                frames, sr, _ = audio_info(wav)
            except UserError as e:
                problems.append(str(e).split("; ")[0])
                continue
            clip["seconds"] = round(frames / sr, 4)
    raise_problems(problems, "re-create or remove those clips and their metadata rows")
    if missing and not allow_missing:
        raise UserError(
            f"{root}: {len(missing)} listed clip{'s are' if len(missing) > 1 else ' is'} missing "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); get them, or rerun with "
            "--allow-missing to leave them out (the real set lost clips deleted from YouTube)"
        )
    gone = set(missing)
    kept = {
        s: {n: c for n, c in clips.items() if f"{AUDIO_DIRS[s]}/{n}" not in gone}
        for s, clips in splits.items()
    }
    for s, clips in kept.items():
        if not clips:
            why = "all its clips are missing" if splits[s] else "it lists no clip"
            raise UserError(f"{root / METADATA[s]}: the {s} split is empty ({why}); check the dataset")
    params = {"root": str(root.resolve()), "allow_missing": allow_missing}
    if not begin_stage(out, overwrite, what="prepare", params=params):
        return read_json(out / CLIPS_FILE)
    info: dict = {"root": str(root.resolve()), "classes": list(CLASSES), "missing": len(missing),
                  "splits": {}}  # fmt: skip
    for s, clips in kept.items():
        keys = ("wav", "seconds", "labels", "events")
        rows = [{"filename": n, **{k: c[k] for k in keys}} for n, c in clips.items()]
        write_jsonl(out / f"{s}.jsonl", rows)
        names = [r["filename"] for r in rows]
        info["splits"][s] = {
            "kind": KINDS[s], "clips": len(rows), "sha256": clip_list_hash(names),
            "events": sum(len(r["events"]) for r in rows),
            "per_class": {c: sum(c in r["labels"] for r in rows) for c in CLASSES},
            "hours": round(sum(r["seconds"] for r in rows) / 3600, 4),
        }  # fmt: skip
        write_text(out / f"{s}.clips.txt", "".join(f"{n}\n" for n in sorted(names)))
    write_text(out / "missing.txt", "".join(f"{m}\n" for m in missing))
    write_json(out / CLIPS_FILE, info)
    mark_done(out, {"splits": {s: v["clips"] for s, v in info["splits"].items()}}, params=params)
    return info


def check_prepared(path: str | Path) -> Path:
    path = require_done(path, "prepare", "run `aics sed prepare` (recipe stage 0) first")
    if not (path / CLIPS_FILE).is_file():
        raise UserError(f"{path}: has no {CLIPS_FILE}; it is not an `aics sed prepare` output")
    return path


# ------------------------------------------------------------------------------------------ features
def extractor(fc: dict):
    from aics.core.audio import FeatureExtractor

    return FeatureExtractor(
        kind="logmel", sr=fc["sample_rate"], n_fft=fc["n_fft"], hop_length=fc["hop"],
        win_length=fc["win"] or None, n_mels=fc["n_mels"], fmin=fc["fmin"], fmax=fc["fmax"] or None, log="db",
    )  # fmt: skip


def clip_samples(fc: dict) -> int:
    return int(round(fc["clip_seconds"] * fc["sample_rate"]))


def frame_seconds(fc: dict) -> float:
    """Seconds per feature frame (frames are centred: frame i at i x this, half a frame on each side)."""
    return fc["hop"] / fc["sample_rate"]


def load_clip(wav: str, fc: dict):
    """A clip at the feature rate, cut or zero-padded to ``clip_seconds``: (samples,) float32."""
    import torch

    from aics.core.audio import read_wav

    x, _ = read_wav(wav, sr=fc["sample_rate"])
    n = clip_samples(fc)
    return x[:n] if len(x) >= n else torch.nn.functional.pad(x, (0, n - len(x)))


def _features_of(args: tuple[list[str], dict]) -> np.ndarray:
    import torch

    wavs, fc = args
    torch.set_num_threads(1)
    fe = extractor(fc)
    batch = torch.stack([load_clip(w, fc) for w in wavs])  # (B, samples)
    return fe(batch).numpy().astype(np.float16)  # (B, frames, n_mels)


def compute_features(
    data_dir: str | Path,
    out: str | Path,
    fc,
    workers: int = 2,
    overwrite: bool = False,
    show_progress=True,
    unlabelled: bool = False,
) -> dict:
    """Stage 1: log-mel of every split of a prepared dir (the unlabelled clips, which no trainer here reads,
    only with ``unlabelled``), and the weak training split's per-band statistics."""
    from concurrent.futures import ProcessPoolExecutor

    from aics.core.log import progress

    data_dir, out = check_prepared(data_dir), Path(out)
    f = fc if isinstance(fc, dict) else asdict(fc)
    if f["fmax"] and f["fmax"] > f["sample_rate"] / 2:
        raise UserError(f"features.fmax={f['fmax']} is above half the sample rate {f['sample_rate']}")
    if f["win"] > f["n_fft"]:
        raise UserError(f"features.win={f['win']} is longer than features.n_fft={f['n_fft']}")
    params = {"data": str(data_dir.resolve()), "features": f, "unlabelled": unlabelled}
    if not begin_stage(out, overwrite, what="features", params=params):
        return read_json(out / FEATURES_FILE)
    prepared = read_json(data_dir / CLIPS_FILE)
    wanted = [s for s in prepared["splits"] if unlabelled or KINDS[s] != "unlabelled"]
    manifests = {s: read_jsonl(data_dir / f"{s}.jsonl") for s in wanted}
    info: dict = {"task": "sed", "features": f, "dim": f["n_mels"], "data": str(data_dir.resolve()),
                  "classes": list(CLASSES), "frame_seconds": frame_seconds(f), "frames": None,
                  "splits": {}}  # fmt: skip
    bar = progress(total=sum(map(len, manifests.values())), desc="features", enabled=show_progress)
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for s, rows in manifests.items():
            chunks = [[r["wav"] for r in rows[i : i + 8]] for i in range(0, len(rows), 8)]
            parts = []
            for part in (pool.map if pool else map)(_features_of, [(c, f) for c in chunks]):
                parts.append(part)
                bar.update(len(part))
            feats = np.concatenate(parts)
            save_npy(out / f"{s}.npy", feats)
            write_jsonl(out / f"{s}.jsonl", rows)
            info["frames"] = int(feats.shape[1])
            info["splits"][s] = {**prepared["splits"][s], "clips": len(rows)}
            if s == "weak":
                x = feats.astype(np.float64).reshape(-1, feats.shape[-1])
                info["mean"] = x.mean(0).round(6).tolist()
                info["std"] = np.maximum(x.std(0), 1e-3).round(6).tolist()
    finally:
        if pool is not None:
            pool.shutdown()
    bar.close()
    write_json(out / FEATURES_FILE, info)
    mark_done(out, {"dim": f["n_mels"], "frames": info["frames"]}, params=params)
    return info


def check_features(path: str | Path) -> Path:
    path = require_done(path, "features", "run `aics sed features` (recipe stage 1) first")
    if not (path / FEATURES_FILE).is_file() or read_json(path / FEATURES_FILE).get("task") != "sed":
        raise UserError(f"{path}: is not an `aics sed features` output; run `aics sed features` (stage 1)")
    return path


# ------------------------------------------------------------------------------------------ batches
class SedSet:
    """The clips of one split of a features dir: (index, normalised log-mel (T, D) float32, tags (C,))."""

    def __init__(self, feats_dir: str | Path, split: str, mean=None, std=None):
        feats_dir = Path(feats_dir)
        info = read_json(feats_dir / FEATURES_FILE)
        if split not in info["splits"]:
            found = ", ".join(info["splits"]) or "none"
            raise UserError(f"{feats_dir}: has no split {split!r} (found: {found}); check the split name")
        self.feats = np.load(feats_dir / f"{split}.npy", mmap_mode="r", allow_pickle=False)
        self.rows = read_jsonl(feats_dir / f"{split}.jsonl")
        self.mean = np.asarray(info["mean"] if mean is None else mean, np.float32)
        self.std = np.asarray(info["std"] if std is None else std, np.float32)
        self.tags = np.zeros((len(self.rows), len(CLASSES)), np.float32)
        for i, r in enumerate(self.rows):
            for label in r["labels"]:
                self.tags[i, CLASSES.index(label)] = 1.0
        self.frame_seconds = info["frame_seconds"]
        self.clip_seconds = info["features"]["clip_seconds"]
        self.kind = info["splits"][split]["kind"]
        self.split = split

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        import torch

        x = (np.asarray(self.feats[i], np.float32) - self.mean) / self.std
        return i, torch.from_numpy(x), torch.from_numpy(self.tags[i])

    def events(self) -> dict[str, list[tuple[float, float, str]]]:
        """The split's strong labels, as the metrics take them."""
        return {r["filename"]: [tuple(e) for e in r["events"]] for r in self.rows}

    def filenames(self) -> list[str]:
        return [r["filename"] for r in self.rows]


class Collate:
    """Stacks clips and, in training, augments them: time shift, SpecAugment masks, mixup.

    Every random draw comes from a generator seeded by (seed, epoch, clip index), so a resumed run sees the
    same augmented batches as one never stopped."""

    def __init__(self, ac=None, seed: int = 0, frame_seconds: float = 0.02):
        self.ac, self.seed, self.epoch, self.frame_seconds = ac, seed, 0, frame_seconds

    def __call__(self, items):
        import torch

        idx = [i for i, _, _ in items]
        x = torch.stack([f for _, f, _ in items])  # (B, T, D)
        y = torch.stack([t for _, _, t in items])  # (B, C)
        if self.ac is not None:
            x, y = self.augment(x.clone(), y.clone(), idx)
        return torch.as_tensor(idx), x, y

    def augment(self, x, y, idx: list[int]):
        import torch

        ac = self.ac
        B, T, D = x.shape
        rngs = [np.random.default_rng((self.seed, self.epoch, i)) for i in idx]
        shift = int(round(ac.max_shift / self.frame_seconds))
        for b, g in enumerate(rngs):
            if ac.time_shift and shift > 0:
                x[b] = torch.roll(x[b], int(g.integers(-shift, shift + 1)), dims=0)
            if ac.specaugment:
                for _ in range(ac.freq_masks):
                    w = int(g.integers(0, min(ac.freq_width, D) + 1))
                    f0 = int(g.integers(0, D - w + 1))
                    x[b, :, f0 : f0 + w] = 0.0  # the band's mean after normalisation
                for _ in range(ac.time_masks):
                    w = int(g.integers(0, min(ac.time_width, T) + 1))
                    t0 = int(g.integers(0, T - w + 1))
                    x[b, t0 : t0 + w, :] = 0.0
        if ac.mixup and B > 1:
            g = np.random.default_rng((self.seed, self.epoch, *idx))
            mixed = g.random(B) < ac.mixup_prob
            lam = torch.from_numpy(g.beta(ac.mixup_alpha, ac.mixup_alpha, B).astype(np.float32))
            lam = torch.where(torch.from_numpy(mixed), torch.maximum(lam, 1 - lam), torch.ones(B))
            partner = torch.from_numpy(g.permutation(B))
            x = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[partner]
            y = lam[:, None] * y + (1 - lam[:, None]) * y[partner]
        return x, y
