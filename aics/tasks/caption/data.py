"""Flickr8k readers and validators, the vocabulary, the image cache, and the training Dataset.

Usage: aics caption prepare --src data/caption/Flickr8k --out data/caption/prepared

The real layout: ``Flicker8k_Dataset/*.jpg``, ``Flickr8k.token.txt`` (``<image>#<n>\\t<caption>``),
``Flickr_8k.{train,dev,test}Images.txt``; or Karpathy's ``dataset_flickr8k.json`` (its split and raw
sentences) beside or instead of the token and split files. Every problem (a caption line without ``#n``,
an empty caption, an image a split lists but the folder lacks, an image that cannot be read) is found
before anything is written and reported with its file and line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from aics.core.errors import UserError, raise_problems
from aics.core.io import read_json, read_jsonl, save_npy, write_json, write_jsonl
from aics.core.stage import begin_stage, mark_done, require_done
from aics.tasks.caption.synth import IMAGES_DIR, KARPATHY_FILE, SPLIT_FILES, TOKEN_FILE

SPLITS = ("train", "dev", "test")
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "dev", "test": "test"}
PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
VOCAB_FILE = "vocab.json"
PREPARE_FILE = "prepare.json"
FEATURES_FILE = "features.json"
_CAPTION_ID = re.compile(r"^(?P<image>[^\s#]+)#(?P<n>\d+)$")


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers; punctuation dropped (the tokens of Karpathy's split file)."""
    return re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split()


# ------------------------------------------------------------------------------------------ reading
def read_token_file(path: Path, problems: list[str]) -> dict[str, list[str]]:
    """``<image>#<n>\\t<caption>`` rows -> captions per image, in ``n`` order."""
    captions: dict[str, dict[int, str]] = {}
    lines_of: dict[tuple[str, int], int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n\r")
            if not line.strip():
                continue
            key, tab, text = line.partition("\t")
            m = _CAPTION_ID.match(key.strip())
            if not tab or m is None:
                problems.append(f"{path}:{lineno}: not '<image>#<n><TAB><caption>'")
                continue
            if not tokenize(text):
                problems.append(f"{path}:{lineno}: empty caption for {key.strip()}")
                continue
            first = lines_of.setdefault((m["image"], int(m["n"])), lineno)
            if first != lineno:
                problems.append(f"{path}:{lineno}: {key.strip()} repeats line {first}")
                continue
            captions.setdefault(m["image"], {})[int(m["n"])] = text.strip()
    return {img: [c[k] for k in sorted(c)] for img, c in captions.items()}


def read_split_file(path: Path, problems: list[str]) -> list[tuple[str, int]]:
    names = []
    with open(path, encoding="utf-8", errors="replace") as f:  # a bad byte shows as a missing image's name
        for lineno, line in enumerate(f, 1):
            if line.strip():
                names.append((line.strip(), lineno))
    if not names:
        problems.append(f"{path}: lists no images")
    return names


def read_karpathy(path: Path, problems: list[str]) -> tuple[dict[str, list[str]], dict[str, list]]:
    """Karpathy's split file -> (captions per image, images per split with their index in the file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        images = data["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not Karpathy's split json (an 'images' list): {e}") from None
    captions: dict[str, list[str]] = {}
    splits: dict[str, list] = {s: [] for s in SPLITS}
    if not isinstance(images, list):
        raise UserError(f"{path}: 'images' is not a list; not Karpathy's split json")
    for i, img in enumerate(images):
        where = f"{path}: images[{i}]"
        if not isinstance(img, dict) or not all(isinstance(x, dict) for x in img.get("sentences") or []):
            problems.append(f"{where}: not an image record with a list of sentence records")
            continue
        name, split = img.get("filename"), img.get("split")
        if not name or split not in KARPATHY_SPLITS:
            problems.append(f"{where}: needs a filename and a split (train, restval, val or test)")
            continue
        texts = [s.get("raw") or " ".join(s.get("tokens", [])) for s in img.get("sentences", [])]
        if not texts or any(not tokenize(t) for t in texts):
            problems.append(f"{where} ({name}): has an empty or no caption")
            continue
        captions[name] = texts
        splits[KARPATHY_SPLITS[split]].append((name, i))
    return captions, splits


def find_layout(src: Path) -> dict:
    if not src.is_dir():
        raise UserError(f"{src}: not found; give the Flickr8k folder (or run `aics caption synth`)")
    images = src / IMAGES_DIR
    if not images.is_dir():
        alt = [p for p in (src / "Images", src / "images") if p.is_dir()]
        if not alt:
            raise UserError(
                f"{src}: has no {IMAGES_DIR}/ folder of images; unpack Flickr8k_Dataset.zip there"
            )
        images = alt[0]
    token, karpathy = src / TOKEN_FILE, src / KARPATHY_FILE
    has_splits = all((src / f).is_file() for f in SPLIT_FILES.values())
    if not karpathy.is_file() and not (token.is_file() and has_splits):
        raise UserError(
            f"{src}: needs {TOKEN_FILE} and {', '.join(SPLIT_FILES.values())} (Flickr8k_text.zip) or "
            f"{KARPATHY_FILE} (Karpathy's split)"
        )
    return {"images": images, "token": token if token.is_file() else None,
            "karpathy": karpathy if karpathy.is_file() else None, "split_files": has_splits}  # fmt: skip


def check_image(path: Path) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()  # the header and, for PNG, the checksums
        with Image.open(path) as im:
            im.load()  # the pixels: a truncated or damaged JPEG fails here
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        return f"{path}: cannot be read as an image ({type(e).__name__}); re-download or remove it"
    return None


# ------------------------------------------------------------------------------------------ prepare
def prepare(
    src: str | Path,
    out: str | Path,
    min_count: int = 5,
    split_source: str = "auto",
    overwrite: bool = False,
) -> dict:
    """Validate the set, build the vocabulary from the training captions and write one jsonl per split.

    ``split_source``: ``official`` (the Flickr_8k.*Images.txt files), ``karpathy`` (dataset_flickr8k.json)
    or ``auto`` (the official files when present). Captions come from Flickr8k.token.txt when present."""
    src, out = Path(src), Path(out)
    layout = find_layout(src)
    if split_source == "auto":
        split_source = "official" if layout["split_files"] and layout["token"] else "karpathy"
    if split_source == "official" and not (layout["split_files"] and layout["token"]):
        raise UserError(
            f"{src}: split_source=official needs {TOKEN_FILE} and the Flickr_8k.*Images.txt files"
        )
    if split_source == "karpathy" and layout["karpathy"] is None:
        raise UserError(f"{src}: split_source=karpathy needs {KARPATHY_FILE}")
    problems: list[str] = []
    splits: dict[str, list] = {}
    captions: dict[str, list[str]] = {}
    if layout["karpathy"] is not None and (split_source == "karpathy" or layout["token"] is None):
        captions, ksplits = read_karpathy(layout["karpathy"], problems)
        if split_source == "karpathy":
            splits = {
                s: [(n, f"{layout['karpathy']}: images[{i}]") for n, i in v] for s, v in ksplits.items()
            }
    if layout["token"] is not None:
        captions = read_token_file(layout["token"], problems)
    if split_source == "official":
        for s, fname in SPLIT_FILES.items():
            path = src / fname
            splits[s] = [(n, f"{path}:{lineno}") for n, lineno in read_split_file(path, problems)]
    raise_problems(problems, "fix those lines (or re-download the caption files)")

    seen: dict[str, str] = {}
    for s in SPLITS:
        for name, where in splits.get(s, []):
            if name in seen:
                problems.append(f"{where}: {name} is listed again (first in {seen[name]})")
            seen[name] = where
            if name not in captions:
                problems.append(f"{where}: {name} has no captions in {layout['token'] or layout['karpathy']}")
            elif not (layout["images"] / name).is_file():
                problems.append(f"{where}: {name} is not in {layout['images']}")
    raise_problems(problems, "restore those images or remove them from the split lists")
    for s in SPLITS:
        if not splits.get(s):
            raise UserError(f"{src}: the {s} split has no images; every split needs some")
    for s in SPLITS:
        for name, _ in splits[s]:
            bad = check_image(layout["images"] / name)
            if bad:
                problems.append(bad)
    raise_problems(problems, "re-download or remove those images")

    params = {"src": str(src.resolve()), "min_count": min_count, "split_source": split_source}
    if not begin_stage(out, overwrite, what="prepare", params=params):
        return read_json(out / PREPARE_FILE)
    counts = Counter(w for name, _ in splits["train"] for c in captions[name] for w in tokenize(c))
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    vocab = [*SPECIALS, *words]
    write_json(out / VOCAB_FILE, {"words": vocab, "min_count": min_count, "specials": list(SPECIALS)})
    known = set(vocab)
    info: dict = {"src": str(src), "split_source": split_source, "vocab": len(vocab), "min_count": min_count,
                  "splits": {}}  # fmt: skip
    for s in SPLITS:
        rows = []
        for name, _ in splits[s]:
            toks = [tokenize(c) for c in captions[name]]
            rows.append({"image": str((layout["images"] / name).resolve()), "name": name,
                         "captions": captions[name], "tokens": toks})  # fmt: skip
        n_tok = sum(len(t) for r in rows for t in r["tokens"])
        unk = sum(w not in known for r in rows for t in r["tokens"] for w in t)
        write_jsonl(out / f"{s}.jsonl", rows)
        info["splits"][s] = {
            "images": len(rows),
            "captions": sum(len(r["captions"]) for r in rows),
            "unk_rate": round(unk / max(1, n_tok), 5),
            "mean_words": round(n_tok / max(1, sum(len(r["tokens"]) for r in rows)), 2),
        }
    write_json(out / PREPARE_FILE, info)
    mark_done(out, info={"vocab": len(vocab)}, params=params)
    return info


def check_prepared(path: str | Path) -> Path:
    path = require_done(path, "prepare", "run `aics caption prepare` (recipe stage 0) first")
    if not (path / VOCAB_FILE).is_file():
        raise UserError(f"{path}: has no {VOCAB_FILE}; it is not an `aics caption prepare` output")
    return path


# ------------------------------------------------------------------------------------------ image cache
def load_image(path: str | Path, size: int) -> np.ndarray:
    """RGB, resized (stretched) to ``size`` x ``size``: (size, size, 3) uint8."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.uint8)


def compute_features(prepared: str | Path, out: str | Path, fc, overwrite: bool = False,
                     show_progress: bool = True) -> dict:  # fmt: skip
    """Every split's images resized once into ``<split>.npy`` (N, S, S, 3) uint8, the captions beside them,
    and the training images' per-channel mean and deviation (the encoder's input normalisation)."""
    from dataclasses import asdict

    from aics.core.log import progress

    prepared, out = check_prepared(prepared), Path(out)
    params = {"prepared": str(prepared.resolve()), "features": asdict(fc)}
    if not begin_stage(out, overwrite, what="features", params=params):
        return read_json(out / FEATURES_FILE)
    info: dict = {"task": "caption", "features": asdict(fc), "splits": {}}
    for s in SPLITS:
        rows = read_jsonl(prepared / f"{s}.jsonl")
        arr = np.zeros((len(rows), fc.image_size, fc.image_size, 3), dtype=np.uint8)
        for i, r in enumerate(progress(rows, desc=f"images {s}", enabled=show_progress)):
            try:
                arr[i] = load_image(r["image"], fc.image_size)
            except OSError as e:
                raise UserError(f"{r['image']}: cannot be read ({e}); rerun `aics caption prepare`") from None
        save_npy(out / f"{s}.npy", arr)
        write_jsonl(out / f"{s}.jsonl", [{"name": r["name"], "captions": r["captions"], "tokens": r["tokens"]}
                                         for r in rows])  # fmt: skip
        info["splits"][s] = {"images": len(rows)}
        if s == "train":  # per-channel sums a chunk at a time: the whole set in float64 would not fit
            total, squares, count = np.zeros(3), np.zeros(3), 0
            for lo in range(0, len(arr), 256):
                x = arr[lo : lo + 256].reshape(-1, 3).astype(np.float64) / 255
                total, squares, count = total + x.sum(0), squares + (x * x).sum(0), count + len(x)
            mean = total / max(1, count)
            std = np.sqrt(np.maximum(squares / max(1, count) - mean**2, 0.0))
            info["mean"], info["std"] = mean.tolist(), np.maximum(std, 1e-3).tolist()
    vocab = read_json(prepared / VOCAB_FILE)
    write_json(out / VOCAB_FILE, vocab)
    write_json(out / FEATURES_FILE, info)
    mark_done(out, info={"images": sum(v["images"] for v in info["splits"].values())}, params=params)
    return info


def check_features(path: str | Path) -> Path:
    path = require_done(path, "features", "run `aics caption features` (recipe stage 1) first")
    if not (path / FEATURES_FILE).is_file() or read_json(path / FEATURES_FILE).get("task") != "caption":
        raise UserError(
            f"{path}: is not an `aics caption features` output; run `aics caption features` first"
        )
    return path


# ------------------------------------------------------------------------------------------ Dataset
class Vocab:
    def __init__(self, words: list[str]):
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.pad, self.start, self.end, self.unk = (self.index[s] for s in SPECIALS)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: list[str], max_len: int) -> list[int]:
        """``<start> w1 .. wn <end>`` with at most ``max_len`` words."""
        return [self.start, *(self.index.get(w, self.unk) for w in tokens[:max_len]), self.end]

    def decode(self, ids) -> list[str]:
        out = []
        for i in ids:
            i = int(i)
            if i == self.end:
                break
            if i not in (self.start, self.pad):
                out.append(self.words[i])
        return out

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        return cls(read_json(path)["words"])


class CaptionSet:
    """One split of the image cache: ``images`` (N, S, S, 3) uint8 and each image's captions. An item is an
    image with all its captions, so that a training step encodes each image once for its five captions."""

    def __init__(self, feats_dir: str | Path, split: str, vocab: Vocab, max_len: int = 20):
        feats_dir = Path(feats_dir)
        if not (feats_dir / f"{split}.npy").is_file():
            raise UserError(f"{feats_dir}: has no split {split!r}; choose one of {', '.join(SPLITS)}")
        self.images = np.load(feats_dir / f"{split}.npy", mmap_mode="r")
        self.rows = read_jsonl(feats_dir / f"{split}.jsonl")
        self.vocab = vocab
        self.encoded = [[vocab.encode(t, max_len) for t in r["tokens"]] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray, list[list[int]]]:
        return i, np.asarray(self.images[i]), self.encoded[i]

    def references(self) -> list[list[str]]:
        """Each image's reference captions as space-joined tokens."""
        return [[" ".join(t) for t in r["tokens"]] for r in self.rows]


def collate(items: list, pad: int = 0):
    """-> (image index (B,), images (B, 3, S, S) uint8, captions (N, T) padded with ``pad``, lengths (N,),
    owner (N,): the batch row of each caption's image)."""
    import torch

    idx = torch.tensor([i for i, _, _ in items])
    images = torch.from_numpy(np.stack([im for _, im, _ in items])).permute(0, 3, 1, 2).contiguous()
    caps_list = [(b, c) for b, (_, _, cs) in enumerate(items) for c in cs]
    lengths = torch.tensor([len(c) for _, c in caps_list])
    owner = torch.tensor([b for b, _ in caps_list])
    caps = torch.full((len(caps_list), int(lengths.max())), pad, dtype=torch.long)
    for n, (_, c) in enumerate(caps_list):
        caps[n, : len(c)] = torch.tensor(c)
    return idx, images, caps, lengths, owner
