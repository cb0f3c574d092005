"""Scene posteriors of a split: from a trained system (``predict``), or late fusion of the audio and video
systems' posteriors (``fuse``).

Usage: aics avsc predict --exp exp/avsc/audio --data data/avsc/prepared --split evaluate
       aics avsc fuse --audio exp/avsc/audio --video exp/avsc/video --data data/avsc/prepared --out exp/avsc

``predict_<split>/`` holds ``predictions.csv`` in the course's format (``aid``, ``scene_pred``, then one
probability column per scene; tab-separated), ``probs.npy`` (clips, scenes) and ``predict.json``. ``fuse``
writes two systems: ``late_mean`` (the mean of the two posteriors) and ``late_weighted`` (per-scene weights of
the two log posteriors, fitted on the valid split, recorded in each ``predict_<split>/weights.json``).
Predictions carry the hash of their clip list: scoring or fusing them against other clips is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aics.core.errors import UserError
from aics.core.io import read_json, write_json, write_text
from aics.core.stage import begin_stage, mark_done, require_done
from aics.core.trainloop import data_fingerprint
from aics.tasks.avsc.data import PREPARE_FILE, SceneSet, check_prepared, checked_probs, ids_hash
from aics.tasks.avsc.labels import SCENES

SPLITS_SCORED = ("valid", "evaluate")


def load_system(path: Path, device):
    from aics.core.ckpt import load_checkpoint, load_weights, require_parts
    from aics.tasks.avsc.model import SceneNet, SceneNetConfig

    ckpt = load_checkpoint(path, map_location="cpu", task="avsc")
    require_parts(ckpt, path)
    model = SceneNet(SceneNetConfig(**ckpt["extra"]["net"]))
    load_weights(model, ckpt["model"], path)
    return model.to(device).eval(), ckpt


def write_predictions(out: Path, ds: SceneSet, probs: np.ndarray, record: dict) -> None:
    lines = ["\t".join(["aid", "scene_pred", *SCENES])]
    for aid, p in zip(ds.ids, probs, strict=True):
        lines.append("\t".join([aid, SCENES[int(p.argmax())], *(f"{x:.6f}" for x in p)]))
    write_text(out / "predictions.csv", "\n".join(lines) + "\n")
    np.save(out / "probs.npy", probs.astype(np.float32))
    write_json(out / "predict.json", {**record, "clips": len(ds), "labelled": int((ds.labels >= 0).sum()),
                                      "ids_sha256": ids_hash(ds.ids)})  # fmt: skip


def predict(
    exp: str | Path,
    prepared: str | Path,
    split: str = "evaluate",
    ckpt: str = "best",
    device: str = "auto",
    overwrite: bool = False,
) -> dict:
    from aics.core.paths import existing_checkpoint
    from aics.core.runtime import pick_device
    from aics.tasks.avsc.train import posteriors

    exp, prepared = Path(exp), check_prepared(prepared)
    path = existing_checkpoint(exp, ckpt)
    dev = pick_device(device)
    model, ck = load_system(path, dev)
    trained_on = (ck["extra"].get("data") or {}).get("sha256")
    if trained_on and trained_on != data_fingerprint(prepared, (PREPARE_FILE, ".done"))["sha256"]:
        raise UserError(
            f"{prepared}: is not the prepared data {path} was trained on (other clips or normalisation); "
            f"predict with that data ({ck['extra']['data'].get('path')})"
        )
    ds = SceneSet(prepared, split)
    out = exp / f"predict_{split}"
    params = {"ckpt": str(path.resolve()), "data": str(prepared.resolve()), "split": split}
    if not begin_stage(out, overwrite, what="predict", params=params):
        return read_json(out / "predict.json")
    probs = posteriors(model, ds, dev)
    record = {
        "system": ck["extra"]["net"]["system"],
        "split": split,
        "data": str(prepared),
        "ckpt": str(path),
        "epoch": ck["epoch"],
    }
    write_predictions(out, ds, probs, record)
    mark_done(out, params=params)
    return read_json(out / "predict.json")


def read_probs(exp: Path, split: str, ds: SceneSet) -> np.ndarray:
    d = require_done(
        exp / f"predict_{split}", "predict", f"run `aics avsc predict --exp {exp} --split {split}`"
    )
    return checked_probs(d, ds)


def fuse(
    audio_exp: str | Path,
    video_exp: str | Path,
    prepared: str | Path,
    out: str | Path,
    splits: tuple[str, ...] = SPLITS_SCORED,
    overwrite: bool = False,
) -> dict:
    """Late fusion of two single-modality systems' posteriors on ``splits`` (which must include valid, where
    the weights are fitted); writes ``<out>/late_mean`` and ``<out>/late_weighted``."""
    from aics.tasks.avsc.model import fit_late_weights, late_fusion

    audio_exp, video_exp, prepared, out = (
        Path(audio_exp),
        Path(video_exp),
        check_prepared(prepared),
        Path(out),
    )
    if "valid" not in splits:
        raise UserError("late fusion fits its weights on the valid split: include valid in the splits")
    sets = {s: SceneSet(prepared, s) for s in splits}
    probs = {}
    for exp, want in ((audio_exp, "audio"), (video_exp, "video")):
        for split in splits:
            probs[want, split] = torch.from_numpy(
                read_probs(exp, split, sets[split])
            )  # or one line saying how
            got = read_json(exp / f"predict_{split}" / "predict.json").get("system")
            if got != want:
                raise UserError(f"{exp}: is the {got} system; late fusion takes the {want} system there")
    weights = fit_late_weights(probs["audio", "valid"].float(), probs["video", "valid"].float(),
                               torch.from_numpy(sets["valid"].labels))  # fmt: skip
    # what the fused outputs are made from: other predictions refuse a finished fusion instead of reusing it
    inputs = {m: {s: file_hash(e / f"predict_{s}" / "probs.npy") for s in splits}
              for m, e in (("audio", audio_exp), ("video", video_exp))}  # fmt: skip
    results = {}
    for name, w in (("late_mean", None), ("late_weighted", weights)):
        exp = out / name
        for s in splits:
            d = exp / f"predict_{s}"
            params = {"audio": str(audio_exp.resolve()), "video": str(video_exp.resolve()), "split": s,
                      "inputs": inputs}  # fmt: skip
            if not begin_stage(d, overwrite, what="fuse", params=params):
                continue
            fused = late_fusion(probs["audio", s].float(), probs["video", s].float(), w).numpy()
            write_predictions(d, sets[s], fused, {"system": name, "split": s, "data": str(prepared)})
            write_json(d / "weights.json", {
                "audio_weight_per_scene": dict(zip(SCENES, map(float, w), strict=True)) if w is not None
                else "0.5 for every scene (the mean)", "fitted_on": "valid",
                "audio": str(audio_exp), "video": str(video_exp)})  # fmt: skip
            mark_done(d, params=params)
        results[name] = str(exp)
    return {"systems": results, "weights": dict(zip(SCENES, map(float, weights), strict=True))}


def file_hash(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
