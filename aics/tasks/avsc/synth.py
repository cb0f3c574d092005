"""An offline stand-in for TAU Urban Audio-Visual Scenes 2021 (DCASE2021 task 1B) in its own layout, with
per-clip audio and video embeddings as the course provides them, and a designed modality structure.

Usage: aics avsc synth --out data/avsc/synth --format npy

Writes ``evaluation_setup/fold1_{train,evaluate,test}.csv`` (tab-separated filename_audio, filename_video,
scene_label; the test fold without labels) and ``meta.csv`` (with the identifier of each clip's recording
location too), as the real set has them; the embeddings (``embeddings/{audio,video}/<clip>.npy``, (steps,
dim) float32, or with ``--format h5`` the course's ``embeddings/{audio,video}.hdf5`` with a dataset per clip
under ``<scene index>/<clip>``); ``design.json`` (the structure below) and ``clip_design.csv`` (which clips
had a corrupted modality).

The design, so that fusion has something to resolve and the conflict analysis something to find:

- pairs confusable by audio but not by video: airport / shopping_mall (indoor crowds), street_pedestrian /
  public_square (outdoor voices): each pair shares an audio prototype and differs only a little;
- pairs confusable by video but not by audio: bus / tram (vehicle interiors), metro / metro_station;
- park and street_traffic: distinct in both;
- every clip: its class's prototype + its city's offset + its recording location's offset + a clip offset
  + noise at each time step (locations are not shared between folds);
- a share of clips (``corrupt``) has one modality replaced: by noise around zero (uninformative) or by
  another class's prototype (misleading), drawn per clip and recorded in ``clip_design.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.tasks.avsc.labels import FOLDS, HEADER, MODALITIES, SCENES, SETUP_DIR

CITIES = ("amsterdam", "barcelona", "helsinki", "lisbon", "london", "lyon", "milan", "paris", "prague",
          "stockholm", "vienna")  # fmt: skip
AUDIO_PAIRS = (("airport", "shopping_mall"), ("street_pedestrian", "public_square"))
VIDEO_PAIRS = (("bus", "tram"), ("metro", "metro_station"))
INFO_FILE = "design.json"
FORMAT_VERSION = 1


def prototypes(rng: np.random.Generator, pairs: tuple, dim: int, within: float) -> np.ndarray:
    """(classes, dim): unit-norm group prototypes, the two classes of a pair sharing one and differing by a
    ``within``-long offset; every other class its own."""
    group = {c: c for c in SCENES}
    for a, b in pairs:
        group[b] = a
    base = {g: _unit(rng, dim) for g in dict.fromkeys(group.values())}
    out = np.stack([base[group[c]] + within * _unit(rng, dim) for c in SCENES])
    return out.astype(np.float32)


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.normal(size=dim)
    return v / np.linalg.norm(v)


def generate(
    out: str | Path,
    per_class: tuple[int, int, int] = (60, 20, 20),
    dims: tuple[int, int] = (128, 128),
    steps: int = 20,
    corrupt: float = 0.12,
    fmt: str = "npy",
    seed: int = 0,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict:
    """Write the set (``.done`` last); returns what ``design.json`` records. ``per_class``: clips per scene in
    the train, evaluate and test folds; ``dims``: audio and video embedding sizes (openl3's: 512, 512)."""
    from aics.core.io import read_json, write_json, write_text
    from aics.core.log import progress
    from aics.core.stage import begin_stage, mark_done

    if fmt not in ("npy", "h5"):
        raise UserError(f"format {fmt!r}: choose npy or h5")
    if not 0 <= corrupt <= 1:
        raise UserError(f"corrupt={corrupt} is a share: 0 to 1")
    out = Path(out)
    params = {"per_class": list(per_class), "dims": list(dims), "steps": steps, "corrupt": corrupt,
              "format": fmt, "seed": seed, "version": FORMAT_VERSION}  # fmt: skip
    if not begin_stage(out, overwrite, what="synth", params=params):
        return read_json(out / INFO_FILE)
    rng = np.random.default_rng(seed)
    within, city_std, location_std, clip_std, step_std = 0.12, 0.05, 0.12, 0.12, 0.5
    protos = {"audio": prototypes(rng, AUDIO_PAIRS, dims[0], within),
              "video": prototypes(rng, VIDEO_PAIRS, dims[1], within)}  # fmt: skip
    city_off = {
        m: rng.normal(0, city_std, size=(len(CITIES), d)) for m, d in zip(MODALITIES, dims, strict=True)
    }
    rows: dict[str, list[tuple]] = {s: [] for s in FOLDS}
    design_rows = []
    embeddings: dict[str, dict[str, np.ndarray]] = {"audio": {}, "video": {}}
    location = 1000
    total = sum(per_class) * len(SCENES)
    bar = progress(range(total), desc="clips", enabled=show_progress)
    it = iter(bar)
    for split, n in zip(FOLDS, per_class, strict=True):
        for c, scene in enumerate(SCENES):
            made = 0
            while made < n:
                city = int(rng.integers(len(CITIES)))
                location += int(rng.integers(1, 40))
                loc_off = {
                    m: rng.normal(0, location_std, size=d) for m, d in zip(MODALITIES, dims, strict=True)
                }
                for segment in range(min(int(rng.integers(3, 8)), n - made)):
                    next(it, None)
                    stem = f"{scene}-{CITIES[city]}-{location}-{40000 + 10 * segment + int(rng.integers(10))}"
                    hit, kind, shown = None, "", ""
                    if rng.random() < corrupt:
                        hit = MODALITIES[int(rng.integers(2))]
                        kind = "noise" if rng.random() < 0.5 else "misleading"
                    for m, d in zip(MODALITIES, dims, strict=True):
                        proto = protos[m][c]
                        if m == hit and kind == "noise":
                            proto = np.zeros(d, dtype=np.float32)
                        elif m == hit:
                            other = int(rng.choice([k for k in range(len(SCENES)) if k != c]))
                            proto, shown = protos[m][other], SCENES[other]
                        clip = proto + city_off[m][city] + loc_off[m] + rng.normal(0, clip_std, size=d)
                        emb = clip[None, :] + rng.normal(0, step_std, size=(steps, d))
                        embeddings[m][stem] = emb.astype(np.float32)
                    rows[split].append((f"audio/{stem}.wav", f"video/{stem}.mp4", scene,
                                        f"{CITIES[city]}-{location}"))  # fmt: skip
                    if hit:
                        design_rows.append((stem, split, scene, hit, kind, shown))
                    made += 1
    bar.close()
    setup = out / SETUP_DIR
    setup.mkdir(parents=True, exist_ok=True)
    for split, fname in FOLDS.items():  # as the real set: no identifier column in the folds (meta.csv has it)
        header = HEADER[:2] if split == "test" else HEADER[:3]
        lines = ["\t".join(header)] + ["\t".join(r[: len(header)]) for r in rows[split]]
        write_text(setup / fname, "\n".join(lines) + "\n")
    meta = ["\t".join(HEADER)] + ["\t".join(r) for s in FOLDS for r in rows[s]]
    write_text(out / "meta.csv", "\n".join(meta) + "\n")
    write_text(out / "clip_design.csv", "\n".join(["clip\tfold\tscene_label\tmodality\tkind\tlooks_like"] +
                                                  ["\t".join(r) for r in design_rows]) + "\n")  # fmt: skip
    write_embeddings(out / "embeddings", embeddings, rows, fmt)
    info = {"generator": "aics avsc synth", "seed": seed, "format": fmt, "dims": {"audio": dims[0],
            "video": dims[1]}, "steps": steps, "clips": {s: len(r) for s, r in rows.items()},
            "audio_confusable": [list(p) for p in AUDIO_PAIRS],
            "video_confusable": [list(p) for p in VIDEO_PAIRS],
            "distinct_in_both": ["park", "street_traffic"], "corrupt_share": corrupt,
            "corrupted_clips": len(design_rows),
            "noise": {"within_pair": within, "city": city_std, "location": location_std, "clip": clip_std,
                      "step": step_std}}  # fmt: skip
    write_json(out / INFO_FILE, info)
    mark_done(out, params=params)
    return info


def write_embeddings(root: Path, embeddings: dict, rows: dict, fmt: str) -> None:
    """Plain writes: the set is complete only once ``.done`` is written after them."""
    if fmt == "npy":
        for m in MODALITIES:
            (root / m).mkdir(parents=True, exist_ok=True)
            for stem, emb in embeddings[m].items():
                np.save(root / m / f"{stem}.npy", emb)
        return
    import h5py

    label = {Path(r[0]).stem: SCENES.index(r[2]) for split in rows.values() for r in split}
    root.mkdir(parents=True, exist_ok=True)
    for m in MODALITIES:
        tmp = root / f".{m}.hdf5.tmp"
        with h5py.File(tmp, "w") as f:
            for stem, emb in embeddings[m].items():
                f.create_dataset(f"{label[stem]}/{stem}", data=emb)
        tmp.replace(root / f"{m}.hdf5")
