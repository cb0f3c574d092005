"""Tacotron2's data: filelists (stage 0), mel features (stage 1), batches.

Usage: aics tts prepare --src data/tts/corpus --out data/tts/prepared && aics tts features --data
data/tts/prepared --out data/tts/feats

Features are NVIDIA's: 22050 Hz, 1024-sample window and FFT, hop 256, 80 Slaney mel bands over 0-8000 Hz, the
natural log of mel *magnitudes* clamped at 1e-5, the signal reflect-padded by half a window at both ends
(frame t is centred on sample 256 t).

``prepare`` reads an LJSpeech-layout corpus (real LJSpeech, or ``aics asr synth --layout ljspeech``), splits
it with a seeded shuffle and writes NVIDIA's filelists: ``{train,valid,test}_filelist.txt`` with one
``wav path|text`` row per utterance. ``features`` reads such filelists (yours too: a path may be relative to
the filelist's folder) and writes, per subset, ``<subset>.npy`` (all frames, float32, (frames, n_mels),
read memory-mapped), ``<subset>.offsets.npy`` and ``<subset>.jsonl`` (id, wav, text, frames, source), and
``features.json`` with the exact settings. Wavs at another rate are resampled (and counted).
"""

from __future__ import annotations

import math
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aics.core.audio import log_mel, mel_filterbank
from aics.core.errors import UserError, raise_problems
from aics.core.io import read_json, read_jsonl, write_json, write_jsonl, write_text
from aics.core.stage import begin_stage, done_info, is_done, mark_done, require_done

SUBSETS = ("train", "valid", "test")
FEATURES_FILE = "features.json"


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    floor: float = 1e-5


NVIDIA_MEL = MelConfig()


def mel_spectrogram(wav: torch.Tensor, mc: MelConfig = NVIDIA_MEL) -> torch.Tensor:
    """Waveform (..., samples) in [-1, 1] -> log mel (..., n_mels, samples // hop + 1)."""
    x = wav if wav.dim() > 1 else wav[None]
    pad = mc.n_fft // 2
    lead = x.shape[:-1]
    x = F.pad(x.reshape(-1, 1, x.shape[-1]), (pad, pad), mode="reflect").reshape(*lead, -1)
    mel = log_mel(
        x, mc.sample_rate, mc.n_fft, mc.hop, mc.win_length, n_mels=mc.n_mels, fmin=mc.fmin, fmax=mc.fmax,
        htk=False, norm="slaney", power=1.0, log="ln", floor=mc.floor, center=False,
    )  # fmt: skip
    return mel if wav.dim() > 1 else mel[0]


def mel_basis(mc: MelConfig = NVIDIA_MEL) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) Slaney filterbank, as librosa.filters.mel gives."""
    return mel_filterbank(mc.sample_rate, mc.n_fft, mc.n_mels, mc.fmin, mc.fmax, htk=False, norm="slaney")


def filelist_path(data_dir: str | Path, subset: str) -> Path:
    return Path(data_dir) / f"{subset}_filelist.txt"


def read_filelist(path: str | Path) -> list[dict]:
    """NVIDIA's ``wav path|text`` rows (a relative path is taken from the filelist's folder). Every row is
    checked: two fields, a text with at least one symbol, a readable wav (its header: the row records its
    sample rate); all problems are raised as one line naming ``file:line``."""
    from aics.core.audio import audio_info
    from aics.tasks.tts.text import clean_text

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such filelist; run `aics tts prepare` or write `wav|text` rows")
    rows, problems = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        wav, sep, text = line.partition("|")
        if not sep:
            problems.append(f"{where}: not a `wav path|text` row")
            continue
        text = text.split("|")[0].strip()  # NVIDIA's multi-speaker lists add |speaker
        wav_path = Path(wav.strip())
        if not wav_path.is_absolute():
            wav_path = path.parent / wav_path
        if not clean_text(text).strip():
            problems.append(f"{where}: empty transcript")
            continue
        if not wav_path.is_file():
            problems.append(f"{where}: no wav {wav_path}")
            continue
        try:
            _, sr, _ = audio_info(wav_path)
        except UserError as e:
            problems.append(f"{where}: {e}")
            continue
        rows.append({"id": wav_path.stem, "wav": str(wav_path.resolve()), "text": text, "source": where,
                     "sample_rate": sr})  # fmt: skip
    raise_problems(problems, "fix or remove those rows")
    if not rows:
        raise UserError(f"{path}: has no rows; it needs `wav path|text` lines")
    return rows


def prepare(
    src: str | Path,
    out: str | Path,
    valid_frac: float = 0.03,
    test_frac: float = 0.05,
    seed: int = 0,
    workers: int = 2,
    overwrite: bool = False,
) -> dict:
    """Stage 0: an LJSpeech-layout corpus -> train/valid/test filelists (a seeded shuffle)."""
    from aics.tasks.asr import corpora
    from aics.tasks.tts.text import clean_text

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise UserError(
            f"{src}: no such directory; pass an LJSpeech-layout corpus (`aics asr synth` writes one)"
        )
    params = {"src": str(src.resolve()), "valid_frac": valid_frac, "test_frac": test_frac, "seed": seed}
    if not overwrite and is_done(out) and done_info(out).get("params") == params:
        begin_stage(out, False, what="prepare", params=params)  # says it is done already
        return read_json(out / "stats.json")
    utts = corpora.read_corpus(src, "ljspeech")
    durations = corpora.check_audio(utts, workers=workers)
    problems = [f"{u.source}: empty transcript" for u in utts if not clean_text(u.text).strip()]
    raise_problems(problems, "fix or remove those rows of metadata.csv")
    order = list(range(len(utts)))
    random.Random(seed).shuffle(order)
    n_valid = max(1, round(len(utts) * valid_frac)) if valid_frac > 0 else 0
    n_test = max(1, round(len(utts) * test_frac)) if test_frac > 0 else 0
    if len(utts) - n_valid - n_test < 1:
        raise UserError(
            f"{src}: {len(utts)} utterances leave none for training; lower --valid-frac/--test-frac"
        )
    parts = {"valid": order[:n_valid], "test": order[n_valid : n_valid + n_test],
             "train": order[n_valid + n_test :]}  # fmt: skip
    if not begin_stage(out, overwrite, what="prepare", params=params):
        return read_json(out / "stats.json")
    stats: dict = {**params, "subsets": {}}
    for name, idx in parts.items():
        if not idx:  # --valid-frac / --test-frac 0: no such filelist
            continue
        idx = sorted(idx, key=lambda i: utts[i].id)
        rows = [f"{Path(utts[i].wav).resolve()}|{utts[i].text}" for i in idx]
        write_text(filelist_path(out, name), "".join(r + "\n" for r in rows))
        stats["subsets"][name] = {
            "utterances": len(idx), "hours": round(sum(durations[i] for i in idx) / 3600, 4)
        }  # fmt: skip
    write_json(out / "stats.json", stats)
    mark_done(out, {"utterances": len(utts)}, params=params)
    return stats


def mel_config(fc) -> MelConfig:
    f = fc if isinstance(fc, dict) else asdict(fc)
    return MelConfig(
        **{k: f[k] for k in ("sample_rate", "n_fft", "win_length", "hop", "n_mels", "fmin", "fmax")}
    )


def check_nvidia_features(f: dict, where: str) -> None:
    """Tacotron2's vocoders, synthesis and scores assume NVIDIA's rate, STFT and mel range: refuse others in
    one line (the number of mel bands is free for training; synthesis needs 80)."""
    other = {k: v for k, v in f.items() if k != "n_mels" and getattr(NVIDIA_MEL, k) != v}
    if other:
        shown = ", ".join(f"features.{k}={v}" for k, v in other.items())
        raise UserError(
            f"{where}: {shown}: the TTS lab uses NVIDIA's features only (22050 Hz, n_fft and window 1024, "
            "hop 256, mels over 0-8000 Hz), which its vocoders and scores assume; drop those settings"
        )


def _mel_chunk(args) -> list[np.ndarray]:
    from aics.core.audio import read_wav

    torch.set_num_threads(1)
    wavs, f = args
    mc = mel_config(f)
    out = []
    for w in wavs:
        wav, _ = read_wav(w, sr=mc.sample_rate)
        with torch.no_grad():
            out.append(mel_spectrogram(wav, mc).T.contiguous().numpy())
    return out


def compute_features(
    data_dir: str | Path, out: str | Path, fc, workers: int = 2, overwrite: bool = False, show_progress=True
) -> dict:
    """Stage 1: the mels of every filelist in ``data_dir``, memory-mappable, with their settings."""
    from aics.core.io import save_npy
    from aics.core.log import get_logger, progress

    data_dir, out = Path(data_dir), Path(out)
    f = fc if isinstance(fc, dict) else asdict(fc)
    check_nvidia_features(f, "aics tts features")
    if not data_dir.is_dir():
        raise UserError(
            f"{data_dir}: no such directory; run `aics tts prepare` first or pass your filelists' folder"
        )
    subsets = [s for s in SUBSETS if filelist_path(data_dir, s).is_file()]
    if "train" not in subsets:
        raise UserError(
            f"{filelist_path(data_dir, 'train')}: missing; a features dir needs a training filelist"
        )
    lists = {s: read_filelist(filelist_path(data_dir, s)) for s in subsets}  # all checked before any output
    params = {"data": str(data_dir.resolve()), "features": f}
    if not begin_stage(out, overwrite, what="features", params=params):
        return read_json(out / FEATURES_FILE)
    info: dict = {"features": f, "subsets": {}, "data": str(data_dir), "resampled": 0}
    bar = progress(total=sum(map(len, lists.values())), desc="mels", enabled=show_progress)
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for s, rows in lists.items():
            chunks = [[r["wav"] for r in rows[i : i + 16]] for i in range(0, len(rows), 16)]
            arrays: list[np.ndarray] = []
            for part in (pool.map if pool else map)(_mel_chunk, [(c, f) for c in chunks]):
                arrays += part
                bar.update(len(part))
            info["resampled"] += sum(r["sample_rate"] != f["sample_rate"] for r in rows)
            lengths = np.array([len(a) for a in arrays], dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            save_npy(out / f"{s}.npy", np.concatenate(arrays).astype(np.float32))
            save_npy(out / f"{s}.offsets.npy", offsets)
            write_jsonl(
                out / f"{s}.jsonl", [{**r, "frames": int(n)} for r, n in zip(rows, lengths, strict=True)]
            )
            seconds = float(lengths.sum()) * f["hop"] / f["sample_rate"]
            info["subsets"][s] = {
                "utterances": len(rows),
                "frames": int(offsets[-1]),
                "hours": round(seconds / 3600, 4),
            }
    finally:
        if pool is not None:
            pool.shutdown()
    bar.close()
    if info["resampled"]:
        get_logger().info(f"{info['resampled']} wavs were resampled to {f['sample_rate']} Hz")
    write_json(out / FEATURES_FILE, info)
    mark_done(out, {"subsets": info["subsets"]}, params=params)
    return info


def check_features(feats_dir: str | Path) -> Path:
    return require_done(feats_dir, "features", "run `aics tts features --data PREPARED --out DIR` first")


def training_features(feats_dir: Path, subsets):
    """What a trainer reads of a features dir before anything else: the recorded features (NVIDIA's, checked)
    and that each of ``subsets`` has utterances; one line otherwise. -> the recorded ``FeatureConfig``."""
    from aics.core.config import from_dict
    from aics.tasks.tts.config import FeatureConfig

    recorded = read_json(feats_dir / FEATURES_FILE)
    for name in subsets:
        if not recorded["subsets"].get(name, {}).get("utterances"):
            raise UserError(
                f"{feats_dir}: has no utterances in subset {name!r}; set train.train_set / train.valid_set "
                f"to one of {', '.join(recorded['subsets'])}"
            )
    check_nvidia_features(recorded["features"], str(feats_dir / FEATURES_FILE))
    return from_dict(FeatureConfig, recorded["features"], str(feats_dir / FEATURES_FILE))


def subset_rows(feats_dir: str | Path, subset: str) -> Path:
    """``<subset>.jsonl`` of a features dir, or one line naming the subsets there."""
    path = Path(feats_dir) / f"{subset}.jsonl"
    if not path.is_file():
        found = ", ".join(sorted(p.stem for p in Path(feats_dir).glob("*.jsonl"))) or "none"
        raise UserError(f"{feats_dir}: has no subset {subset!r} (found: {found}); check the subset name")
    return path


class _SometimesPhones:
    """A lexicon that gives a word's phones with probability ``p`` (seeded), else None (letters)."""

    def __init__(self, lexicon, p: float, rng: random.Random):
        self.lexicon, self.p, self.rng = lexicon, p, rng

    def phones(self, word: str):
        return self.lexicon.phones(word) if self.rng.random() < self.p else None


class MelSet:
    """One subset of a features dir: item i -> (index, text ids (N,), mel (n_mels, T) float32)."""

    def __init__(self, feats_dir: str | Path, subset: str, max_frames: int = 0, arpabet: float = 0.0,
                 seed: int = 0):  # fmt: skip
        from aics.tasks.tts.text import text_to_ids

        feats_dir = Path(feats_dir)
        subset_rows(feats_dir, subset)
        self.mels = np.load(feats_dir / f"{subset}.npy", mmap_mode="r", allow_pickle=False)
        self.offsets = np.load(feats_dir / f"{subset}.offsets.npy", allow_pickle=False)
        self.rows = read_jsonl(feats_dir / f"{subset}.jsonl")
        self.lengths = np.diff(self.offsets)
        dropped: set[str] = set()
        self.ids = [text_to_ids(r["text"], dropped=dropped) for r in self.rows]
        if dropped:
            from aics.core.log import get_logger

            shown = " ".join(repr(d) if len(d) == 1 else d for d in sorted(dropped))
            get_logger().info(
                f"{feats_dir}/{subset}.jsonl: dropped from the texts (no Tacotron2 symbol): {shown}"
            )
        self.keep = [i for i in range(len(self.rows)) if not max_frames or self.lengths[i] <= max_frames]
        self.arpabet, self.seed, self.epoch = arpabet, seed, 0
        self.lexicon = None
        if arpabet > 0:
            from aics.tasks.tts.text import Lexicon

            self.lexicon = Lexicon.cmudict()

    def __len__(self) -> int:
        return len(self.keep)

    def text_ids(self, j: int) -> list[int]:
        if self.lexicon is None:
            return self.ids[j]
        from aics.tasks.tts.text import text_to_ids

        rng = random.Random(self.seed * 1_000_003 + self.epoch * 100_003 + j)  # the same draw on resume
        return text_to_ids(
            self.rows[j]["text"], _SometimesPhones(self.lexicon, self.arpabet, rng), dropped=set()
        )

    def __getitem__(self, i: int):
        j = self.keep[i]
        mel = torch.from_numpy(np.array(self.mels[self.offsets[j] : self.offsets[j + 1]], dtype=np.float32))
        return j, torch.tensor(self.text_ids(j), dtype=torch.long), mel.T


def collate(items: list, r: int = 1, pad_value: float = math.log(NVIDIA_MEL.floor)) -> dict:
    """Pad a batch: text (B, N), text_lengths (B,), mels (B, n_mels, T) with T a multiple of ``r``, padded
    with the log mel of silence, mel_lengths (B,), target_lengths (B,): each rounded up to whole decoder steps
    (the last step's frames after the end are trained to be silence, so none is left unconstrained), gate
    targets (B, S) per decoder step: 1 from the step that holds an utterance's last frame on, and index."""
    b = len(items)
    text_lengths = torch.tensor([len(t) for _, t, _ in items])
    mel_lengths = torch.tensor([m.shape[1] for _, _, m in items])
    steps = -(-int(mel_lengths.max()) // r)
    text = torch.zeros(b, int(text_lengths.max()), dtype=torch.long)
    mels = torch.full((b, items[0][2].shape[0], steps * r), pad_value)
    gate = torch.zeros(b, steps)
    for k, (_, t, m) in enumerate(items):
        text[k, : len(t)] = t
        mels[k, :, : m.shape[1]] = m
        gate[k, -(-m.shape[1] // r) - 1 :] = 1.0
    index = torch.tensor([j for j, _, _ in items])
    return {"text": text, "text_lengths": text_lengths, "mels": mels, "mel_lengths": mel_lengths,
            "target_lengths": -(-mel_lengths // r) * r, "gate": gate, "index": index}  # fmt: skip
