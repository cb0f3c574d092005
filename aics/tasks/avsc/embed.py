"""The feature-extraction hook: per-clip embeddings from the raw audio and video, for users who have them.

Usage: aics avsc embed --src TAU-urban-audio-visual-scenes-2021-development --modality audio \
           --extractor logmel --out data/avsc/emb/audio
       aics avsc embed --src ... --modality video --extractor mypackage.openl3_hook:video --out .../video

Every clip the fold lists (or meta.csv) name is read from ``<src>/<filename_audio>`` or
``<src>/<filename_video>``, given to the extractor, and its (time steps, dim) array saved as
``<out>/<clip>.npy``, which ``aics avsc prepare --audio-emb/--video-emb`` reads. An extractor is a built-in
name or any ``module:function`` on the Python path taking ``(path, hop_seconds)`` and returning a 2-D array:
plug in openl3 (DCASE's baseline embeddings) or your course's network there. Built in, needing nothing beyond
aics: ``logmel`` (audio: 64 log-mel bands, 40 ms windows every hop) and ``colorhist`` (video: an 8 x 4 x 4
HSV colour histogram of a frame every hop, read with OpenCV). A clip whose embedding is already there is
kept, so an interrupted run goes on where it stopped.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aics.core.errors import UserError, raise_problems
from aics.tasks.avsc.labels import FOLDS, SETUP_DIR


def audio_logmel(path: Path, hop_seconds: float = 0.1) -> np.ndarray:
    """(frames, 64) log-mel (dB) of a 16 kHz mono mixdown, 40 ms windows every ``hop_seconds``."""
    from aics.core.audio import log_mel, read_wav

    wav, sr = read_wav(path, sr=16000)
    hop = max(1, round(hop_seconds * sr))
    mel = log_mel(wav, sr, n_fft=640, hop_length=hop, n_mels=64, fmin=50.0, fmax=8000.0)
    return mel.T.numpy().astype(np.float32)


def video_colorhist(path: Path, hop_seconds: float = 0.1) -> np.ndarray:
    """(frames, 128) HSV colour histograms (8 hue x 4 saturation x 4 value bins, summing to 1) of a frame
    every ``hop_seconds``."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UserError(f"{path}: OpenCV cannot open this video; check the file or its codec")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(hop_seconds * fps))
    feats, k = [], 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if k % step == 0:
                hsv = cv2.cvtColor(frame, cv2.COLOR_BGR2HSV)
                h = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
                feats.append(h / max(float(h.sum()), 1.0))
            k += 1
    finally:
        cap.release()
    if not feats:
        raise UserError(f"{path}: no frames could be read from this video")
    return np.stack(feats).astype(np.float32)


BUILT_IN: dict[str, tuple[str, Callable]] = {"logmel": ("audio", audio_logmel),
                                             "colorhist": ("video", video_colorhist)}  # fmt: skip


def load_extractor(name: str, modality: str) -> Callable:
    if name in BUILT_IN:
        made_for, fn = BUILT_IN[name]
        if made_for != modality:
            raise UserError(
                f"--extractor {name} reads {made_for}, not {modality}; choose another for {modality}"
            )
        return fn
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise UserError(f"--extractor {name}: give a built-in ({', '.join(BUILT_IN)}) or module:function")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(f"--extractor {name}: cannot import it ({e}); is the module on PYTHONPATH?") from None
    if not callable(fn):
        raise UserError(f"--extractor {name}: is not a function")
    return fn


def clip_files(src: Path, modality: str) -> list[tuple[str, Path, str]]:
    """(stem, media path, where listed) of every clip of meta.csv or the fold lists, once each."""
    import csv

    lists = (
        [src / "meta.csv"] if (src / "meta.csv").is_file() else [src / SETUP_DIR / f for f in FOLDS.values()]
    )
    column = f"filename_{modality}"
    out: dict[str, tuple[str, Path, str]] = {}
    for path in lists:
        if not path.is_file():
            continue
        with open(path, encoding="utf-8", newline="") as f:
            for lineno, row in enumerate(csv.DictReader(f, delimiter="\t"), 2):
                name = (row.get(column) or "").strip()
                if name:
                    out.setdefault(Path(name).stem, (Path(name).stem, src / name, f"{path}:{lineno}"))
    if not out:
        raise UserError(
            f"{src}: no clips listed (meta.csv or {SETUP_DIR}/fold1_*.csv with a {column} column)"
        )
    return list(out.values())


def embed(src: str | Path, out: str | Path, modality: str, extractor: str, hop_seconds: float = 0.1,
          show_progress: bool = True) -> dict:  # fmt: skip
    """Run the extractor over every listed clip; returns {"clips", "made", "shape"}."""
    from aics.core.io import write_json
    from aics.core.log import progress

    src, out = Path(src), Path(out)
    if modality not in ("audio", "video"):
        raise UserError(f"--modality {modality}: audio or video")
    fn = load_extractor(extractor, modality)
    clips = clip_files(src, modality)
    missing = [f"{where}: {path} not found" for _, path, where in clips if not path.is_file()]
    raise_problems(missing, f"download the {modality} archives into {src} or fix those rows")
    out.mkdir(parents=True, exist_ok=True)
    made, shape = 0, None
    for stem, path, _ in progress(clips, desc=f"{modality} embeddings", enabled=show_progress):
        target = out / f"{stem}.npy"
        if target.is_file():
            continue
        emb = np.asarray(fn(path, hop_seconds), dtype=np.float32)
        if emb.ndim != 2:
            raise UserError(f"--extractor {extractor}: gave shape {emb.shape} for {path}; it must return "
                            "(time steps, dim)")  # fmt: skip
        tmp = target.with_name(f".{target.name}.tmp.npy")
        np.save(tmp, emb)
        tmp.replace(target)  # a killed run never leaves half an embedding under its final name
        made, shape = made + 1, emb.shape
    record = {"src": str(src), "modality": modality, "extractor": extractor, "hop_seconds": hop_seconds,
              "clips": len(clips), "made": made, "last_shape": list(shape) if shape else None}  # fmt: skip
    write_json(out / "embed.json", record)
    return record
