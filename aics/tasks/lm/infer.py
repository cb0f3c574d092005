"""Text from a trained LM, scores, and the comparison report.

Usage: aics lm sample --exp exp/lm/lstm --tokens 60 --temperature 0.8 --top-k 50
       aics lm score --exp exp/lm/lstm --data data/lm/prepared && aics lm report exp/lm/* -o exp/lm/RESULTS.md
"""

from __future__ import annotations

from pathlib import Path

import torch

from aics.core.ckpt import CheckpointDir, load_checkpoint, load_weights, require_parts
from aics.core.config import from_dict
from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl, write_json, write_text
from aics.core.plot import pyplot, save_figure
from aics.core.report import markdown_table
from aics.core.runtime import pick_device
from aics.core.stage import done_info
from aics.tasks.lm.config import LMConfig
from aics.tasks.lm.data import EOS, UNK, check_prepared, load_floor, load_stream, load_vocab
from aics.tasks.lm.metrics import perplexity
from aics.tasks.lm.model import build_lm, parameter_breakdown
from aics.tasks.lm.train import TASK, vocab_hash


def trained_vocab(ckpt: dict, data_dir: str | Path | None, exp: str | Path) -> list[str]:
    """The vocabulary of ``data_dir`` (default: the one trained on), refused when it is not the one the
    checkpoint was trained with: the ids would mean other words."""
    data_dir = Path(data_dir or ckpt["extra"]["data_dir"])
    vocab = load_vocab(data_dir)
    want = ckpt["extra"].get("vocab_sha256")
    same = vocab_hash(data_dir) == want if want else len(vocab) == ckpt["extra"]["vocab_size"]
    if not same:
        raise UserError(
            f"{data_dir / 'vocab.txt'}: not the vocabulary {exp} was trained with (that was "
            f"{ckpt['extra']['data_dir']}, {ckpt['extra']['vocab_size']:,} words); pass the --data it was "
            "trained on"
        )
    return vocab


def load_trained(exp_dir: str | Path, which: str = "best", device: str = "auto"):
    path = CheckpointDir(exp_dir).resolve(which)
    ckpt = load_checkpoint(path, task=TASK)
    require_parts(ckpt, path)
    cfg = from_dict(LMConfig, ckpt["config"], source=str(path))
    model = build_lm(cfg.model, ckpt["extra"]["vocab_size"])
    load_weights(model, ckpt["model"], path)
    return model.to(pick_device(device)).eval(), cfg, ckpt


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    vocab: list[str],
    prompt: str = "",
    tokens: int = 50,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    context: int = 256,
) -> str:
    """Continue ``prompt`` (unknown words become <unk>) by sampling; sentences end at <eos> (a new line)."""
    if temperature <= 0:
        raise UserError(f"--temperature {temperature}: must be above 0")
    device = next(model.parameters()).device
    index = {w: i for i, w in enumerate(vocab)}
    ids = [index[EOS]] + [index.get(w, index[UNK]) for w in prompt.split()]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out: list[int] = []
    state = None
    pending = ids
    for _ in range(tokens):
        if model.recurrent:
            x = torch.tensor([pending], device=device)
        else:
            history = ids + out
            need = model.prefix + 1 if model.prefix else min(len(history), context)
            window = ([index[EOS]] * need + history)[-need:]
            x = torch.tensor([window], device=device)
        logits, state = model(x, state)
        logits = logits[0, -1].float().cpu() / temperature
        if top_k:
            kth = torch.topk(logits, min(top_k, len(logits))).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        nxt = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
        out.append(nxt)
        pending = [nxt]
    words = [vocab[i] for i in out]
    text = " ".join(prompt.split() + words)
    return "\n".join(line.strip() for line in text.split(EOS)).strip()


def score(exp_dir: str | Path, data_dir: str | Path, ckpt: str = "best", device: str = "auto") -> dict:
    exp, data_dir = Path(exp_dir), check_prepared(data_dir)
    model, cfg, ck = load_trained(exp, ckpt, device)
    trained_vocab(ck, data_dir, exp)  # a scores.json from another vocabulary would be nonsense
    dev = next(model.parameters()).device
    stats = read_json(data_dir / "stats.json")
    floor = load_floor(data_dir)
    info = done_info(exp)
    s: dict = {
        "task": TASK,
        "arch": cfg.model.arch,
        "ckpt": ckpt,
        "epoch": ck["epoch"],
        "epochs_trained": info.get("epoch", ck["epoch"]),
        "stop_reason": info.get("reason"),
        "parameters": parameter_breakdown(model)["total"],
        "tokens_per_s": info.get("tokens_per_s"),
        "unigram_test_ppl": stats["splits"]["test"]["unigram_ppl"],
    }
    for split in ("valid", "test"):
        s[split] = perplexity(model, load_stream(data_dir, split), cfg, dev)
    if floor:
        s["floor_test_ppl"] = floor["test"]["ppl"]
        s["floor_valid_ppl"] = floor["valid"]["ppl"]
        s["test_ppl_over_floor"] = s["test"]["ppl"] / floor["test"]["ppl"]
    write_json(exp / "scores.json", s)
    write_text(exp / "RESULTS.md", "# " + exp.name + "\n\n" + report_table([s], [exp.name]))
    return s


COLUMNS = ("exp", "model", "params", "valid PPL", "test PPL", "floor PPL", "test/floor", "unigram PPL")
COLUMNS += ("tokens/s", "epochs")


def report_table(scores: list[dict], names: list[str]) -> str:
    def ratio(s: dict) -> str | None:
        return None if s.get("test_ppl_over_floor") is None else f"{s['test_ppl_over_floor']:.3f}"

    rows = [
        [n, s["arch"], s["parameters"], s["valid"]["ppl"], s["test"]["ppl"], s.get("floor_test_ppl"),
         ratio(s), s["unigram_test_ppl"], None if s.get("tokens_per_s") is None else int(s["tokens_per_s"]),
         s["epochs_trained"]]
        for n, s in zip(names, scores, strict=True)
    ]  # fmt: skip
    rows.sort(key=lambda r: r[4])
    return markdown_table(COLUMNS, rows)


def report(exp_dirs: list[str | Path], out: str | Path | None = None) -> str:
    scores, names = [], []
    for d in exp_dirs:
        path = Path(d) / "scores.json"
        if not path.is_file():
            raise UserError(f"{path}: not found; run `aics lm score --exp {d} --data ...` first")
        scores.append(read_json(path))
        names.append(Path(d).name)
    text = (
        "# Language-model results\n\nPerplexity on every token of the split (the first one predicted from "
        "<eos>); floor = the true source's perplexity on the same text (synthetic corpus only); "
        "tokens/s = training throughput.\n\n" + report_table(scores, names)
    )
    if out is not None:
        write_text(out, text)
        plot_curves(exp_dirs, scores, Path(out).with_name("curves.png"))
    return text


def plot_curves(exp_dirs: list[str | Path], scores: list[dict], path: Path) -> Path:
    """Train / valid / test perplexity per epoch of every experiment, with the floor when known."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
    splits = (("train_epoch", "train"), ("valid", "valid"), ("test", "test"))
    for d, s in zip(exp_dirs, scores, strict=True):
        rows = read_jsonl(Path(d) / "log" / "metrics.jsonl")
        for ax, (split, _) in zip(axes, splits, strict=True):
            points = [(r["epoch"], r["ppl"]) for r in rows if r["split"] == split and "epoch" in r]
            if points:
                name = Path(d).name
                label = name if name == s["arch"] else f"{name} ({s['arch']})"
                ax.plot(*zip(*points, strict=True), marker="o", label=label)
    floor = next((s["floor_test_ppl"] for s in scores if "floor_test_ppl" in s), None)
    for ax, (_, title) in zip(axes, splits, strict=True):
        if floor is not None:
            ax.axhline(floor, color="black", linestyle="--", linewidth=1, label="floor (test)")
        ax.set_title(f"{title} perplexity")
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("perplexity")
    axes[-1].legend(loc="upper right", fontsize=8)
    return save_figure(fig, path)
