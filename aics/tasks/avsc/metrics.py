"""Scene classification scores: the challenge's multi-class log loss, accuracy, per class, the confusion
matrix, and the analysis of where the modalities conflict.

The log loss is DCASE2021 task 1B's: probabilities clipped to [1e-15, 1 - 1e-15] and each clip's row
renormalised (what scikit-learn's ``log_loss`` did when the challenge ran), then the mean of -log p(true
scene). It equals today's ``sklearn.metrics.log_loss`` on rows that sum to 1 with every probability above
its clipping floor (the input dtype's epsilon: 2.2e-16 for float64, 1.2e-7 for float32; tested on float64
posteriors); today's sklearn neither clips at 1e-15 nor renormalises.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-15


def _checked(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    keep = labels >= 0  # unlabelled clips (-1) are not scored
    return labels[keep], probs[keep]


def clip_probabilities(probs: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1 - EPS)
    return p / p.sum(axis=1, keepdims=True)


def per_clip_log_loss(labels, probs) -> np.ndarray:
    labels, probs = _checked(labels, probs)
    p = clip_probabilities(probs)
    return -np.log(p[np.arange(len(labels)), labels])


def log_loss(labels, probs) -> float:
    losses = per_clip_log_loss(labels, probs)
    return float(losses.mean()) if len(losses) else float("nan")


def accuracy(labels, probs) -> float:
    labels, probs = _checked(labels, probs)
    return float((probs.argmax(1) == labels).mean()) if len(labels) else float("nan")


def class_wise(labels, probs, classes) -> dict:
    """Per scene: clips, log loss and accuracy over the clips of that scene."""
    labels, probs = _checked(labels, probs)
    losses = per_clip_log_loss(labels, probs)
    right = probs.argmax(1) == labels
    out = {}
    for c, name in enumerate(classes):
        sel = labels == c
        out[name] = {"clips": int(sel.sum()),
                     "log_loss": float(losses[sel].mean()) if sel.any() else float("nan"),
                     "accuracy": float(right[sel].mean()) if sel.any() else float("nan")}  # fmt: skip
    return out


def confusion(labels, probs, n_classes: int) -> np.ndarray:
    """(true, predicted) counts."""
    labels, probs = _checked(labels, probs)
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (labels, probs.argmax(1)), 1)
    return m


def conflict_analysis(labels, p_audio, p_video, p_fused, classes) -> dict:
    """Per scene and overall: how often the audio-only and video-only systems disagree; when they do, how
    often the fused system follows audio, follows video or neither, and how often each of the three is
    right; and the fused accuracy against the better single modality's (its gain)."""
    labels = np.asarray(labels)
    keep = labels >= 0
    y = labels[keep]
    a, v, f = (np.asarray(p)[keep].argmax(1) for p in (p_audio, p_video, p_fused))

    def summary(sel: np.ndarray) -> dict:
        n = int(sel.sum())
        if n == 0:
            return {"clips": 0}
        dis = sel & (a != v)
        nd = int(dis.sum())
        acc = {k: float((p[sel] == y[sel]).mean()) for k, p in (("audio", a), ("video", v), ("fused", f))}
        out = {"clips": n, "disagree": nd, "disagree_share": nd / n, "accuracy": acc,
               "fusion_gain": acc["fused"] - max(acc["audio"], acc["video"])}  # fmt: skip
        if nd:
            out["when_disagree"] = {
                "follows_audio": float((f[dis] == a[dis]).mean()),
                "follows_video": float((f[dis] == v[dis]).mean()),
                "follows_neither": float(((f[dis] != a[dis]) & (f[dis] != v[dis])).mean()),
                "audio_right": float((a[dis] == y[dis]).mean()),
                "video_right": float((v[dis] == y[dis]).mean()),
                "fused_right": float((f[dis] == y[dis]).mean()),
            }
        return out

    return {"overall": summary(np.ones_like(y, dtype=bool)),
            "per_class": {name: summary(y == c) for c, name in enumerate(classes)}}  # fmt: skip
