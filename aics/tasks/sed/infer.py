"""Frame probabilities -> events, and stage 3: predict the events of a split.

Usage: aics sed predict --exp exp/sed/crnn_cpu --data data/sed/feats --split eval

Post-processing (the config's ``post`` section, which ``--set post.x=v`` overrides at predict time): each
class's frame probabilities are binarised with its threshold (or with hysteresis: a run above
``low_threshold`` that somewhere passes the threshold), median-filtered over ``median_seconds`` (or the
class's ``median_per_class``), optionally
gated by the clip-level decision (``tag_gate``: no event of a class the clip head does not tag), then every
run of active frames becomes an event ``[start, end)`` in seconds; runs closer than ``merge_gap_seconds``
are joined and events shorter than ``min_event_seconds`` dropped.

``predict`` writes ``<exp>/predict_<split>_<ckpt>/``: ``events.tsv`` (DCASE format: filename, onset, offset,
event_label, tab-separated, with a header), ``tags.tsv`` (filename, comma-separated clip tags),
``probs.npz`` (clip and frame probabilities, for tuning thresholds without the model) and ``predict.json``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from aics.tasks.sed.labels import CLASSES

Events = dict[str, list[tuple[float, float, str]]]


# ------------------------------------------------------------------------------------------ post-processing
def class_thresholds(post, n_classes: int = len(CLASSES)) -> np.ndarray:
    from aics.core.errors import UserError

    if post.thresholds and len(post.thresholds) != n_classes:
        raise UserError(
            f"post.thresholds has {len(post.thresholds)} values; give one per class ({n_classes}: "
            f"{', '.join(CLASSES)}) or none"
        )
    if post.median_per_class and len(post.median_per_class) != n_classes:
        raise UserError(
            f"post.median_per_class has {len(post.median_per_class)} values; give one per class "
            f"({n_classes}) or none"
        )
    if min(post.median_per_class, default=0.0) < 0:
        raise UserError("post.median_per_class takes lengths in seconds >= 0")
    thr = np.asarray(post.thresholds or [post.threshold] * n_classes, np.float64)
    if not ((thr > 0) & (thr < 1)).all():
        raise UserError(f"post.threshold(s) {thr.tolist()} must lie between 0 and 1")
    if post.low_threshold and not (post.low_threshold < thr).all():
        raise UserError(
            f"post.low_threshold={post.low_threshold} must be below every threshold ({thr.min():g}) for "
            "hysteresis; 0 turns it off"
        )
    return thr


def median_filter_binary(active: np.ndarray, width: int) -> np.ndarray:
    """Median of a 0/1 sequence (T, C) over ``width`` frames (odd), edges extended with the edge value."""
    if width <= 1:
        return active
    half = width // 2
    padded = np.concatenate([np.repeat(active[:1], half, 0), active, np.repeat(active[-1:], half, 0)])
    csum = np.concatenate([np.zeros((1, active.shape[1])), np.cumsum(padded, 0)])
    window = csum[width:] - csum[:-width]  # (T, C): active frames in each centred window
    return window > half


def hysteresis(probs: np.ndarray, high: np.ndarray, low: float) -> np.ndarray:
    """Runs of frames above ``low`` that contain a frame above ``high`` (per class): (T, C) bool."""
    above_low, above_high = probs > low, probs > high
    out = np.zeros_like(above_low)
    for c in range(probs.shape[1]):
        for start, end in _runs(above_low[:, c]):
            if above_high[start:end, c].any():
                out[start:end, c] = True
    return out


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def decide(frame_probs: np.ndarray, clip_probs: np.ndarray, frame_seconds: float, post) -> np.ndarray:
    """One clip's frame probabilities (T, C) -> active frames (T, C) bool, post-processed."""
    thr = class_thresholds(post, frame_probs.shape[1])
    low = post.low_threshold
    active = hysteresis(frame_probs, thr, low) if low > 0 else frame_probs > thr
    seconds = np.asarray(post.median_per_class or [post.median_seconds] * active.shape[1], np.float64)
    widths = np.round(seconds / frame_seconds).astype(int)
    widths += 1 - widths % 2  # odd
    for w in np.unique(widths):
        cols = widths == w
        active[:, cols] = median_filter_binary(active[:, cols], int(w))
    if post.tag_gate:
        active = active & (clip_probs > thr)[None, :]
    return active


def to_events(
    active: np.ndarray, frame_seconds: float, post, clip_seconds: float | None = None, classes=CLASSES
) -> list[tuple[float, float, str]]:
    """Active frames (T, C) -> [(onset, offset, label)] within [0, clip_seconds], sorted by onset.

    Frames are centred (frame i at i x frame_seconds, covering half a frame on each side), so a run of
    frames [start, end) spans [(start - 1/2), (end - 1/2)) x frame_seconds, clipped to the clip; without
    ``clip_seconds`` the clip ends at the last frame's centre (whole hops of audio)."""
    end_of_clip = (len(active) - 1) * frame_seconds if clip_seconds is None else clip_seconds
    gap = int(round(post.merge_gap_seconds / frame_seconds))
    events = []
    for c, label in enumerate(classes):
        runs = _runs(active[:, c])
        merged: list[list[int]] = []
        for start, end in runs:
            if merged and start - merged[-1][1] <= gap:
                merged[-1][1] = end
            else:
                merged.append([start, end])
        for start, end in merged:
            onset = round(max(0.0, (start - 0.5) * frame_seconds), 3)
            offset = round(min(end_of_clip, (end - 0.5) * frame_seconds), 3)
            if offset - onset >= post.min_event_seconds and offset > onset:
                events.append((onset, offset, label))
    return sorted(events, key=lambda e: (e[0], e[1], e[2]))


def clip_tags(clip_probs: np.ndarray, post, classes=CLASSES) -> list[str]:
    thr = class_thresholds(post, len(classes))
    return [c for c, p, t in zip(classes, clip_probs, thr, strict=True) if p > t]


def postprocess(names: list[str], clip_probs: np.ndarray, frame_probs: np.ndarray, frame_seconds: float,
                post, clip_seconds: float | None = None) -> tuple[Events, dict[str, list[str]]]:  # fmt: skip
    """Every clip's events and tags."""
    events, tags = {}, {}
    for i, name in enumerate(names):
        active = decide(frame_probs[i], clip_probs[i], frame_seconds, post)
        events[name] = to_events(active, frame_seconds, post, clip_seconds)
        tags[name] = clip_tags(clip_probs[i], post)
    return events, tags


# ------------------------------------------------------------------------------------------ the model
def probabilities(model, ds, device, batch_size: int = 64, show_progress: bool = False):
    """(clip probabilities (N, C), frame probabilities (N, T, C)) of every clip of ``ds``, float32."""
    import torch

    from aics.core.log import progress
    from aics.tasks.sed.data import Collate

    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=Collate())
    clips, frames = [], []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for _, x, _ in progress(loader, desc=f"predict {ds.split}", enabled=show_progress):
            c, f = model(x.to(device))
            clips.append(c.float().cpu().numpy())
            frames.append(f.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(clips), np.concatenate(frames)


def evaluate(model, ds, device, post, batch_size: int = 64) -> dict:
    """Valid scores of a strongly labelled split: clip BCE, macro event-based F1, segment F1, tagging F1."""
    from aics.tasks.sed.metrics import evaluate_all

    clip_probs, frame_probs = probabilities(model, ds, device, batch_size)
    p = np.clip(clip_probs.astype(np.float64), 1e-7, 1 - 1e-7)
    loss = float(-(ds.tags * np.log(p) + (1 - ds.tags) * np.log(1 - p)).mean())
    names = ds.filenames()
    events, tags = postprocess(names, clip_probs, frame_probs, ds.frame_seconds, post, ds.clip_seconds)
    scores = evaluate_all(ds.events(), events, CLASSES, files=names, estimated_tags=tags)
    return {"loss": loss, **headline(scores)}


def headline(scores: dict) -> dict:
    """The few numbers logged per epoch and shown first, from ``metrics.evaluate_all``'s result."""
    return {
        "event_f1": scores["event_based"]["class_wise_average"]["f_measure"],
        "event_f1_micro": scores["event_based"]["overall"]["f_measure"],
        "event_er": scores["event_based"]["overall"]["error_rate"],
        "segment_f1": scores["segment_based"]["class_wise_average"]["f_measure"],
        "segment_er": scores["segment_based"]["overall"]["error_rate"],
        "tag_f1": scores["tagging"]["macro"]["f_measure"],
    }


def load_model(ckpt_path: str | Path, device):
    """A trained CRNN, its config and its features record."""
    from aics.core.ckpt import load_checkpoint, load_weights, require_parts
    from aics.core.config import from_dict
    from aics.tasks.sed.config import SedConfig
    from aics.tasks.sed.model import build_model

    ckpt = load_checkpoint(ckpt_path, task="sed")
    require_parts(ckpt, ckpt_path)
    cfg = from_dict(SedConfig, ckpt["config"], str(ckpt_path))
    model = build_model(cfg.model, ckpt["extra"]["dim"], len(CLASSES))
    load_weights(model, ckpt["model"], ckpt_path)
    return model.to(device).eval(), cfg, ckpt


def write_events(path: str | Path, events: Events) -> None:
    from aics.core.io import write_text

    lines = ["filename\tonset\toffset\tevent_label"]
    for name in sorted(events):
        lines += [f"{name}\t{on:.3f}\t{off:.3f}\t{label}" for on, off, label in events[name]]
    write_text(path, "\n".join(lines) + "\n")


def read_events(path: str | Path) -> tuple[Events, list[str]]:
    """A DCASE event list (as ``write_events`` writes, or a strong metadata file) -> (events, clips)."""
    from aics.core.errors import raise_problems
    from aics.tasks.sed.data import read_metadata

    clips, problems = read_metadata(path, "strong")
    raise_problems(problems, "fix those rows")
    return {n: [tuple(e) for e in c["events"]] for n, c in clips.items()}, list(clips)


def predict_dir(exp: Path, split: str, ckpt: str, overrides: tuple[str, ...] = ()) -> Path:
    """``<exp>/predict_<split>_<ckpt>[_<post key><value>...]``: the name says what made it."""
    import re

    tag = ckpt
    if ckpt.endswith(".pt"):
        p = Path(ckpt)
        tag = p.stem if p.resolve().parent == (exp / "ckpt").resolve() else f"{p.parent.parent.name}-{p.stem}"
    for o in overrides:
        key, _, value = o.partition("=")
        tag += "_" + re.sub(r"[^A-Za-z0-9._,-]", "", key.removeprefix("post.") + value)
    return exp / f"predict_{split}_{tag}"


def predict(exp: str | Path, feats_dir: str | Path, split: str, ckpt: str = "best", device: str = "auto",
            overrides: tuple[str, ...] = (), overwrite: bool = False,
            show_progress: bool = True) -> dict:  # fmt: skip
    """Stage 3: events of every clip of a split -> ``predict_dir(...)``."""
    from aics.core.config import apply_override
    from aics.core.errors import UserError
    from aics.core.io import read_json, save_npz, write_json, write_text
    from aics.core.paths import existing_checkpoint
    from aics.core.runtime import pick_device
    from aics.core.stage import begin_stage, mark_done
    from aics.tasks.sed.data import FEATURES_FILE, SedSet, check_features, clip_list_hash

    feats_dir, exp = check_features(feats_dir), Path(exp)
    path = existing_checkpoint(exp, ckpt)
    for o in overrides:
        if not o.startswith("post."):
            raise UserError(f"--set {o}: only post.* settings can change at predict time")
    dev = pick_device(device)
    model, cfg, state = load_model(path, dev)
    for o in overrides:
        apply_override(cfg, o)
    class_thresholds(cfg.post)
    recorded = read_json(feats_dir / FEATURES_FILE)
    trained = state["extra"]["features"]
    if recorded["features"] != trained:
        changed = sorted(k for k in trained if recorded["features"].get(k) != trained[k])
        raise UserError(
            f"{feats_dir}: its features differ from those {path} was trained on ({', '.join(changed)}); "
            "compute the split's features with the training config"
        )
    # the training clips' statistics, whichever features dir the clips come from
    ds = SedSet(feats_dir, split, mean=state["extra"]["mean"], std=state["extra"]["std"])
    out = predict_dir(exp, split, ckpt, overrides)
    params = {"data": str(feats_dir.resolve()), "split": split, "ckpt": str(Path(path).resolve()),
              "post": asdict(cfg.post)}  # fmt: skip
    if not begin_stage(out, overwrite, what="predict", params=params):
        return {"out": str(out), **read_json(out / "predict.json")}
    clip_probs, frame_probs = probabilities(model, ds, dev, cfg.train.eval_batch_size, show_progress)
    names = ds.filenames()
    events, tags = postprocess(names, clip_probs, frame_probs, ds.frame_seconds, cfg.post, ds.clip_seconds)
    write_events(out / "events.tsv", events)
    write_text(
        out / "tags.tsv", "filename\tevent_labels\n" + "".join(f"{n}\t{','.join(tags[n])}\n" for n in names)
    )
    save_npz(out / "probs.npz", clip=clip_probs, frame=frame_probs.astype(np.float16),
             names=np.asarray(names), frame_seconds=np.float64(ds.frame_seconds))  # fmt: skip
    info = {"split": split, "clips": len(names), "clip_list_sha256": clip_list_hash(names),
            "events": sum(map(len, events.values())), "ckpt": str(path), "epoch": state.get("epoch"),
            "post": asdict(cfg.post), "frame_seconds": ds.frame_seconds,
            "features": str(feats_dir.resolve())}  # fmt: skip
    write_json(out / "predict.json", info)
    mark_done(out, {"events": info["events"]}, params=params)
    return {"out": str(out), **info}
