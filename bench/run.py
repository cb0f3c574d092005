"""Benchmarks (``make bench``): speed and quality-at-budget targets, never asserted in CI tests.

Usage: python bench/run.py [--only NAME] [--out bench/out]

Each benchmark prints one line of numbers and appends a JSON record to ``bench/out/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli_startup(repeats: int = 10) -> dict:
    """Wall time of `aics --help` and `aics --version` (target: well under 0.5 s; torch is not imported)."""
    out = {}
    for args in (["--help"], ["--version"], ["vae", "--help"]):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "aics", *args], check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        out[" ".join(args)] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    out["reference: python -c 'import torch'"] = {"median_s": round(time.perf_counter() - t, 3)}
    return out


def vae_train_speed(steps: int = 200) -> dict:
    """Training images/s of the base MLP VAE (hidden 512, batch 128) on random 28x28 images."""
    import torch

    from aics.tasks.vae.model import VAE, bernoulli_nll, kl_to_standard_normal

    out = {}
    for arch in ("mlp", "conv"):
        torch.manual_seed(0)
        model = VAE(2, arch=arch, hidden=512)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        x = torch.rand(128, 1, 28, 28)
        for i in range(steps + 10):
            if i == 10:
                t = time.perf_counter()
            logits, mu, logvar = model(x)
            loss = (bernoulli_nll(logits, x) + kl_to_standard_normal(mu, logvar)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        out[arch] = {"images_per_s": round(steps * 128 / (time.perf_counter() - t))}
    return out


def lm_train_speed(steps: int = 30) -> dict:
    """Training tokens/s per LM architecture at one size: emb 128, hidden 256, 2 layers, vocab 3000,
    batch 32 x 35 tokens (the recipe's CPU setting)."""
    import torch
    import torch.nn.functional as F

    from aics.core.config import load_config
    from aics.tasks.lm.config import ARCHS, LMConfig
    from aics.tasks.lm.model import build_lm

    out = {}
    vocab, batch, bptt = 3000, 32, 35
    for arch in ARCHS:
        torch.manual_seed(0)
        cfg = load_config(
            LMConfig, [], [f"model.arch={arch}", "model.emb=128", "model.hidden=256", "model.context=5"]
        )
        model = build_lm(cfg.model, vocab)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        x = torch.randint(0, vocab, (batch, model.prefix + bptt))
        y = torch.randint(0, vocab, (batch, bptt))
        for i in range(steps + 3):
            if i == 3:
                t = time.perf_counter()
            logits, _ = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
        params = sum(p.numel() for p in model.parameters())
        out[arch] = {
            "tokens_per_s": round(steps * batch * bptt / (time.perf_counter() - t)),
            "params": params,
        }
    return out


BENCHES = {"cli_startup": cli_startup, "vae_train_speed": vae_train_speed, "lm_train_speed": lm_train_speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHES), action="append")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.only or BENCHES:
        result = BENCHES[name]()
        record = {"bench": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
                  "python": platform.python_version(), "result": result}  # fmt: skip
        print(f"{name}: {json.dumps(result)}")
        with open(out / "results.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
