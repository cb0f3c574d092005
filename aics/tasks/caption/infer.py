"""Caption a split with a trained model (greedy or beam search); attention maps as pictures.

Usage: aics caption decode --exp exp/caption/tf --data data/caption/feats --split test --beam 3

Writes ``<exp>/decode_<split>_{greedy,beam<k>}/``: ``captions.jsonl`` (image, caption, words, log p),
``attention/<image>.png`` for the first ``--attention-images`` images (the image once per generated word,
the word's attention over the grid upsampled onto it), ``decode.json`` (speed in images/s, settings).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from aics.core.ckpt import load_checkpoint, load_weights, require_parts
from aics.core.errors import UserError
from aics.core.io import write_json, write_jsonl
from aics.core.paths import existing_checkpoint
from aics.core.stage import begin_stage, mark_done
from aics.tasks.caption.data import FEATURES_FILE, CaptionSet, Vocab, check_features, collate
from aics.tasks.caption.model import Captioner, CaptionerConfig


def decode_tag(split: str, beam: int) -> str:
    return f"decode_{split}_{'greedy' if beam == 1 else f'beam{beam}'}"


def load_captioner(path: str | Path, device) -> tuple[Captioner, dict]:
    ckpt = load_checkpoint(path, map_location="cpu", task="caption")
    require_parts(ckpt, path)
    saved = ckpt["extra"].get("captioner")
    if not isinstance(saved, dict) or not isinstance(ckpt["extra"].get("vocab"), list):
        raise UserError(
            f"{path}: has no captioner config or vocabulary; use one written by `aics caption train`"
        )
    model = Captioner(CaptionerConfig(**{**saved, "encoder_channels": tuple(saved["encoder_channels"])}))
    load_weights(model, ckpt["model"], path)
    return model.to(device).eval(), ckpt


def said(alphas: torch.Tensor, ids: list[int], v: Vocab) -> np.ndarray:
    """The attention rows of the words ``Vocab.decode`` keeps (up to <end>; <start> and <pad> dropped), so
    that map k belongs to word k."""
    rows = []
    for k, i in enumerate(ids):
        if i == v.end:
            break
        if i not in (v.start, v.pad):
            rows.append(k)
    return alphas[rows].float().cpu().numpy()


@torch.no_grad()
def decode_split(model: Captioner, ds: CaptionSet, device, norm, max_len: int, beam: int = 1,
                 batch_size: int = 64, length_norm: float = 0.0, keep_alphas: int = 0,
                 show_progress: bool = False) -> list[dict]:  # fmt: skip
    """Every image's caption: {"words", "logp" (beam only), "alphas" (n, P) for the first ``keep_alphas``}."""
    from aics.core.log import progress

    v = ds.vocab
    out: list[dict] = []
    was_training = model.training
    model.eval()
    if beam == 1:
        for lo in progress(range(0, len(ds), batch_size), desc="greedy", enabled=show_progress):
            _, images, _, _, _ = collate([ds[i] for i in range(lo, min(len(ds), lo + batch_size))])
            words, alphas = model.greedy(norm(images), v.start, v.end, max_len)
            for b in range(len(images)):
                ids = words[b].tolist()
                n = ids.index(v.end) if v.end in ids else len(ids)
                row = {"words": v.decode(ids)}
                if lo + b < keep_alphas:
                    row["alphas"] = said(alphas[b], ids[:n], v)
                out.append(row)
    else:
        for i in progress(range(len(ds)), desc=f"beam {beam}", enabled=show_progress):
            _, image, _ = ds[i]
            x = norm(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None])[0]
            seq, alphas, logp = model.beam_search(x, v.start, v.end, max_len, beam, length_norm)
            row = {"words": v.decode(seq), "logp": round(float(logp), 4)}
            if i < keep_alphas:
                row["alphas"] = said(alphas, seq, v)
            out.append(row)
    model.train(was_training)
    return out


def attention_figure(image: np.ndarray, words: list[str], alphas: np.ndarray, path: Path) -> None:
    """The image once per word with the word's attention (grid x grid) upsampled over it, as in the paper."""
    from PIL import Image

    from aics.core.plot import pyplot, save_figure

    n = len(words)
    grid = int(round(alphas.shape[1] ** 0.5))
    cols = min(5, n + 1)
    rows = -(-(n + 1) // cols)
    fig, axes = pyplot().subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("image", fontsize=9)
    size = image.shape[0]
    for k, word in enumerate(words):
        a = alphas[k].reshape(grid, grid)
        a = a / max(float(a.max()), 1e-8)
        up = np.asarray(Image.fromarray((a * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR))
        ax = axes.flat[k + 1]
        ax.imshow(image)
        ax.imshow(up, alpha=0.6, cmap="gray")
        ax.set_title(word, fontsize=9)
    save_figure(fig, path, dpi=80)


def decode(exp: str | Path, feats_dir: str | Path, split: str = "test", ckpt: str = "best",
           beam: int | None = None, max_len: int | None = None, length_norm: float | None = None,
           attention_images: int = 4, batch_size: int = 64, device: str = "auto",
           out: str | Path | None = None, overwrite: bool = False) -> dict:  # fmt: skip
    """Caption ``split`` of the image cache with a checkpoint of ``exp``; returns decode.json's record."""
    from aics.core.io import read_json
    from aics.core.runtime import pick_device
    from aics.tasks.caption.train import normaliser

    feats_dir, exp = check_features(feats_dir), Path(exp)
    path = existing_checkpoint(exp, ckpt)
    dev = pick_device(device)
    model, ck = load_captioner(path, dev)
    info = read_json(feats_dir / FEATURES_FILE)
    if info["features"] != ck["extra"]["features"]:
        raise UserError(
            f"{feats_dir}: images cached at {info['features']}, but {path} was trained on "
            f"{ck['extra']['features']}; decode the image cache it was trained on"
        )
    vocab = Vocab(ck["extra"]["vocab"])
    dc = ck["config"]["decode"]
    beam = beam or dc["beam_size"]
    out = Path(out) if out else exp / decode_tag(split, beam)
    max_len = max_len or dc["max_len"]
    length_norm = dc["length_norm"] if length_norm is None else length_norm
    params = {"ckpt": str(path.resolve()), "split": split, "beam": beam, "max_len": max_len,
              "length_norm": length_norm}  # fmt: skip
    ds = CaptionSet(feats_dir, split, vocab, max_len)
    if not begin_stage(out, overwrite, what="decode", params=params):
        return read_json(out / "decode.json")
    norm = normaliser(ck["extra"], dev)
    t0 = time.perf_counter()
    rows = decode_split(model, ds, dev, norm, max_len, beam, batch_size, length_norm,
                        keep_alphas=attention_images, show_progress=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    records = []
    for i, (r, meta) in enumerate(zip(rows, ds.rows, strict=True)):
        rec = {"image": meta["name"], "caption": " ".join(r["words"]), "words": r["words"]}
        if "logp" in r:
            rec["logp"] = r["logp"]
        records.append(rec)
        if "alphas" in r and r["words"]:
            attention_figure(np.asarray(ds.images[i]), r["words"], r["alphas"],
                             out / "attention" / f"{Path(meta['name']).stem}.png")  # fmt: skip
    write_jsonl(out / "captions.jsonl", records)
    record = {"ckpt": str(path), "data": str(feats_dir), "split": split, "images": len(ds), "beam": beam,
              "max_len": max_len,
              "length_norm": length_norm, "seconds": round(seconds, 3),
              "images_per_s": round(len(ds) / max(seconds, 1e-9), 2), "device": str(dev),
              "epoch": ck["epoch"], "step": ck["step"]}  # fmt: skip
    write_json(out / "decode.json", record)
    mark_done(out, params=params)
    return record
