"""TAU Urban Audio-Visual Scenes 2021 readers: the fold lists, the per-clip embeddings (npy or HDF5), their
validation, and the arrays the trainers read.

Usage: aics avsc prepare --src data/avsc/synth --out data/avsc/prepared

The fold lists are DCASE's tab-separated ``evaluation_setup/fold1_{train,evaluate,test}.csv`` (filename_audio,
filename_video, scene_label, identifier; the test fold may lack the last two). Embeddings are looked up by
the clip's file stem (``audio/airport-lisbon-1000-40000.wav`` -> ``airport-lisbon-1000-40000``) in a folder of
``<stem>.npy`` files, or in HDF5 files whose datasets are named by the stem under any groups (the course's
``<scene index>/<stem>`` included); each is (time steps, dim). Every problem is found before anything is
written and reported with file and row: a row with a wrong number of fields, an unknown scene, a clip
without an embedding, an embedding of another dimension or another number of time steps than the rest.
A validation fold is split off the training fold by recording location (``identifier``), so that no
location is in both.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from aics.core.errors import UserError, raise_problems
from aics.core.io import read_json, read_jsonl, write_json, write_jsonl
from aics.core.stage import begin_stage, mark_done, require_done
from aics.tasks.avsc.labels import FOLDS, HEADER, MODALITIES, SCENES, SETUP_DIR

SPLITS = ("train", "valid", "evaluate", "test")
PREPARE_FILE = "prepare.json"


# ------------------------------------------------------------------------------------------ fold lists
def location_of(stem: str, meta: dict[str, str]) -> str:
    """A clip's recording location: meta.csv's identifier, else read off the TAU name
    ``<scene>-<city>-<location>-<segment>``."""
    if stem in meta:
        return meta[stem]
    parts = stem.split("-")
    return "-".join(parts[1:3]) if len(parts) >= 4 else stem


def read_meta(path: Path) -> dict[str, str]:
    """meta.csv (beside evaluation_setup/): clip stem -> identifier, when the file is there."""
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {Path(r["filename_audio"]).stem: r["identifier"] for r in rows if r.get("identifier")}


def read_fold(
    path: Path, problems: list[str], labelled: bool, meta: dict[str, str] | None = None
) -> list[dict]:
    """Rows of one fold csv: {"audio", "video", "stem", "scene", "identifier", "where"}. The real set's folds
    have filename_audio, filename_video (and scene_label); an identifier column is read when present, else
    the location comes from meta.csv or the file name."""
    rows: list[dict] = []
    with open(path, encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f, delimiter="\t"))
    if not lines:
        problems.append(f"{path}: empty; expected a header {chr(9).join(HEADER)}")
        return rows
    header = [h.strip() for h in lines[0]]
    need = list(HEADER[:3] if labelled else HEADER[:2])
    if header[: len(need)] != need:
        problems.append(f"{path}:1: header {header}; expected {need} (tab-separated)")
        return rows
    for lineno, fields in enumerate(lines[1:], 2):
        if not any(x.strip() for x in fields):
            continue
        where = f"{path}:{lineno}"
        if len(fields) != len(header):
            problems.append(f"{where}: {len(fields)} fields; the header has {len(header)} (tab-separated)")
            continue
        row = dict(zip(header, (x.strip() for x in fields), strict=True))
        scene = row.get("scene_label", "")
        if labelled and scene not in SCENES:
            problems.append(f"{where}: unknown scene {scene!r}; the scenes are {', '.join(SCENES)}")
            continue
        stem = Path(row["filename_audio"]).stem
        if Path(row["filename_video"]).stem != stem:
            problems.append(f"{where}: audio {row['filename_audio']} and video {row['filename_video']} name "
                            "different clips")  # fmt: skip
            continue
        ident = row.get("identifier") or location_of(stem, meta or {})
        scene = scene if scene in SCENES else ""
        rows.append({"audio": row["filename_audio"], "video": row["filename_video"], "stem": stem,
                     "scene": scene, "identifier": ident, "where": where})  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------ embeddings
class EmbeddingSource:
    """The embeddings of one modality: a folder of ``<stem>.npy``, or HDF5 files (one, or a folder of them)
    whose datasets are found by their last name component."""

    def __init__(self, path: Path, modality: str):
        self.path, self.modality = path, modality
        self.npy: dict[str, Path] = {}
        self.h5: dict[str, tuple[Path, str]] = {}
        files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        if not files:
            raise UserError(f"{path}: no {modality} embeddings there (a folder of .npy or .hdf5 files)")
        for f in files:
            if f.suffix == ".npy":
                self.npy[f.stem] = f
            elif f.suffix in (".h5", ".hdf5"):
                self._index_h5(f)
        if not self.npy and not self.h5:
            raise UserError(f"{path}: no .npy or .hdf5 {modality} embeddings there")

    def _index_h5(self, f: Path) -> None:
        import h5py

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                self.h5[name.rsplit("/", 1)[-1]] = (f, name)

        try:
            with h5py.File(f, "r") as h:
                h.visititems(visit)
        except OSError as e:
            raise UserError(f"{f}: not a readable HDF5 file ({e})") from None

    def __contains__(self, stem: str) -> bool:
        return stem in self.npy or stem in self.h5

    def where(self, stem: str) -> str:
        if stem in self.npy:
            return str(self.npy[stem])
        f, name = self.h5[stem]
        return f"{f}:{name}"

    def load(self, stem: str) -> np.ndarray:
        if stem in self.npy:
            return np.load(self.npy[stem], allow_pickle=False)
        import h5py

        f, name = self.h5[stem]
        with h5py.File(f, "r") as h:
            return np.asarray(h[name])


def find_sources(src: Path, audio: str | Path | None, video: str | Path | None) -> dict[str, EmbeddingSource]:
    out = {}
    for m, given in zip(MODALITIES, (audio, video), strict=True):
        if given:
            path = Path(given)
        else:
            candidates = [
                src / "embeddings" / m,
                src / "embeddings" / f"{m}.hdf5",
                src / "embeddings" / f"{m}.h5",
            ]
            path = next((c for c in candidates if c.exists()), candidates[0])
        if not path.exists():
            raise UserError(f"{path}: no {m} embeddings; give their folder or file with --{m}-emb")
        out[m] = EmbeddingSource(path, m)
    return out


# ------------------------------------------------------------------------------------------ prepare
def prepare(
    src: str | Path,
    out: str | Path,
    audio_emb: str | Path | None = None,
    video_emb: str | Path | None = None,
    steps: int = 0,
    valid_frac: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict:
    """Validate the folds and embeddings; write each split's arrays (float16), labels and the training
    split's per-dimension mean and deviation. ``steps`` > 0 cuts (or refuses shorter) clips to that many
    time steps; 0 asks every clip to have the same number."""
    from aics.core.log import progress

    src, out = Path(src), Path(out)
    if not (src / SETUP_DIR).is_dir():
        raise UserError(f"{src}: has no {SETUP_DIR}/ with the fold lists; give the dataset's folder")
    problems: list[str] = []
    folds = {}
    meta = read_meta(src / "meta.csv")
    for split, fname in FOLDS.items():
        path = src / SETUP_DIR / fname
        if not path.is_file():
            if split == "test":
                folds[split] = []
                continue
            raise UserError(f"{path}: missing; the dataset needs {', '.join(FOLDS.values())}")
        folds[split] = read_fold(path, problems, labelled=split != "test", meta=meta)
    raise_problems(problems, "fix those rows")
    sources = find_sources(src, audio_emb, video_emb)
    seen: dict[str, str] = {}
    for split, rows in folds.items():
        for r in rows:
            if r["stem"] in seen and split != "test":
                problems.append(f"{r['where']}: {r['stem']} is listed again (first at {seen[r['stem']]})")
            seen.setdefault(r["stem"], r["where"])
            for m in MODALITIES:
                if r["stem"] not in sources[m]:
                    problems.append(f"{r['where']}: no {m} embedding for {r['stem']} in {sources[m].path}")
    raise_problems(problems, "add those embeddings or remove the rows")
    if not folds["train"] or not folds["evaluate"]:
        raise UserError(f"{src}: the train and evaluate folds need clips")

    locations = sorted({r["identifier"] for r in folds["train"]})
    rng = np.random.default_rng(seed)
    n_valid = max(1, round(valid_frac * len(locations))) if valid_frac > 0 else 0
    held = set(rng.permutation(locations)[:n_valid].tolist()) if n_valid else set()
    if len(held) >= len(locations):
        raise UserError(
            f"{src}: the training fold has {len(locations)} recording location(s); holding out {len(held)} "
            "for valid leaves none to train on: lower --valid-frac"
        )
    splits = {"train": [r for r in folds["train"] if r["identifier"] not in held],
              "valid": [r for r in folds["train"] if r["identifier"] in held],
              "evaluate": folds["evaluate"], "test": folds["test"]}  # fmt: skip
    shapes = check_shapes(splits, sources, steps)

    params = {"src": str(src.resolve()), "audio": str(sources["audio"].path.resolve()),
              "video": str(sources["video"].path.resolve()), "steps": steps, "valid_frac": valid_frac,
              "seed": seed}  # fmt: skip
    if not begin_stage(out, overwrite, what="prepare", params=params):
        return read_json(out / PREPARE_FILE)
    info: dict = {"src": str(src), "splits": {}, "scenes": list(SCENES), "held_out_locations": len(held)}
    for split, rows in splits.items():
        for m in MODALITIES:
            arr = np.zeros((len(rows), *shapes[m]), dtype=np.float16)
            for i, r in enumerate(progress(rows, desc=f"{m} {split}", enabled=show_progress)):
                arr[i] = sources[m].load(r["stem"])[: shapes[m][0]]
            np.save(out / f"{split}.{m}.npy", arr)
        listed = [{"id": r["stem"], "scene": r["scene"], "identifier": r["identifier"], "audio": r["audio"],
                   "video": r["video"]} for r in rows]  # fmt: skip
        write_jsonl(out / f"{split}.jsonl", listed)
        info["splits"][split] = {"clips": len(rows)}
    for m in MODALITIES:
        x = np.load(out / f"train.{m}.npy").astype(np.float64).reshape(-1, shapes[m][1])
        info[m] = {"steps": int(shapes[m][0]), "dim": int(shapes[m][1]), "mean": x.mean(0).tolist(),
                   "std": np.maximum(x.std(0), 1e-5).tolist()}  # fmt: skip
    write_json(out / PREPARE_FILE, info)
    mark_done(out, info={"clips": {s: v["clips"] for s, v in info["splits"].items()}}, params=params)
    return info


F16_MAX = 65504.0


def check_shapes(splits: dict, sources: dict, steps: int) -> dict[str, tuple[int, int]]:
    """Every embedding read once before anything is written: the (time steps, dim) of each modality (the
    most common one, or ``steps`` cut), and one line per clip that does not fit, cannot be read, or holds
    values that are not finite or beyond what float16 storage keeps."""
    from collections import Counter

    seen: dict[str, list[tuple[str, tuple]]] = {m: [] for m in MODALITIES}
    problems: list[str] = []
    for rows in splits.values():
        for r in rows:
            for m in MODALITIES:
                where = f"{r['where']}: {sources[m].where(r['stem'])}"
                try:
                    emb = np.asarray(sources[m].load(r["stem"]))
                    if emb.dtype.kind not in "fiu":
                        raise ValueError(f"dtype {emb.dtype}")
                except (OSError, ValueError, TypeError, KeyError) as e:
                    problems.append(f"{where}: cannot be read as a numeric array ({str(e)[:80]})")
                    continue
                if emb.ndim != 2:
                    problems.append(f"{where}: shape {emb.shape}; expected (time steps, dim)")
                    continue
                if not np.isfinite(emb).all() or np.abs(emb).max(initial=0.0) > F16_MAX:
                    problems.append(f"{where}: holds NaN, infinite or values beyond +-{F16_MAX:.0f}")
                    continue
                seen[m].append((where, emb.shape))
    raise_problems(problems, "fix or remove those embeddings")
    shapes = {}
    for m in MODALITIES:
        dims = Counter(shape[1] for _, shape in seen[m])
        dim = dims.most_common(1)[0][0]
        problems += [
            f"{w}: dimension {s[1]}, most {m} embeddings have {dim}" for w, s in seen[m] if s[1] != dim
        ]
        if steps:
            problems += [
                f"{w}: {s[0]} time steps, fewer than --steps {steps}" for w, s in seen[m] if s[0] < steps
            ]
            shapes[m] = (steps, dim)
        else:
            n = Counter(shape[0] for _, shape in seen[m]).most_common(1)[0][0]
            problems += [f"{w}: {s[0]} time steps, most {m} embeddings have {n}; pass --steps N to cut every "
                         "clip to N" for w, s in seen[m] if s[0] != n]  # fmt: skip
            shapes[m] = (n, dim)
    raise_problems(problems, "fix or remove those embeddings")
    return shapes


def check_prepared(path: str | Path) -> Path:
    path = require_done(path, "prepare", "run `aics avsc prepare` (recipe stage 0) first")
    if not (path / PREPARE_FILE).is_file():
        raise UserError(f"{path}: has no {PREPARE_FILE}; it is not an `aics avsc prepare` output")
    return path


class SceneSet:
    """A prepared split: audio (N, T, Da), video (N, T', Dv), normalised, float32; labels (N,), -1: none."""

    def __init__(self, prepared: str | Path, split: str):
        prepared = Path(prepared)
        info = read_json(prepared / PREPARE_FILE)
        if split not in info["splits"]:
            raise UserError(f"{prepared}: has no split {split!r}; choose one of {', '.join(info['splits'])}")
        self.rows = read_jsonl(prepared / f"{split}.jsonl")
        self.x = {}
        for m in MODALITIES:
            arr = np.load(prepared / f"{split}.{m}.npy").astype(np.float32)
            mean, std = np.asarray(info[m]["mean"], np.float32), np.asarray(info[m]["std"], np.float32)
            self.x[m] = (arr - mean) / std
        self.labels = np.array([SCENES.index(r["scene"]) if r["scene"] else -1 for r in self.rows])
        self.ids = [r["id"] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def ids_hash(ids: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def checked_probs(pred_dir: Path, ds: SceneSet) -> np.ndarray:
    """A predict dir's posteriors, refused in one line unless they are of exactly ``ds``'s clips, in order."""
    info = read_json(pred_dir / "predict.json")
    if info.get("ids_sha256") != ids_hash(ds.ids):
        raise UserError(
            f"{pred_dir}: its predictions are of other clips (or another order) than the {info.get('split')} "
            "split of the data given; predict again from the same prepared data"
        )
    return np.load(pred_dir / "probs.npy")
