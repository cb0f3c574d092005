"""Perplexity: exp of the mean negative log-likelihood (nats) of every token of a split."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aics.tasks.lm.config import LMConfig
from aics.tasks.lm.data import WindowSet, batchify, lm_pairs


@torch.no_grad()
def perplexity(model: torch.nn.Module, stream: torch.Tensor, cfg: LMConfig, device: torch.device) -> dict:
    """Scores every token once, the first one from an ``<eos>`` context.

    Recurrent models read ``eval.batch_size`` parallel streams with the state carried through; the
    transformer reads windows of ``train.bptt`` tokens stepped by ``eval.stride`` (default half a window,
    so every scored token has at least that much context); the FFN sees its full n-gram context everywhere.
    """
    was_training = model.training
    model.eval()
    inputs, targets = lm_pairs(stream)
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    bptt, bs = cfg.train.bptt, cfg.eval.batch_size
    if model.recurrent:
        x, y = batchify(inputs, targets, bs)
        state = None
        for i in range(0, x.shape[1], bptt):
            logits, state = model(x[:, i : i + bptt].to(device), state)
            tgt = y[:, i : i + bptt].to(device)
            total += F.cross_entropy(
                logits.float().flatten(0, 1), tgt.flatten(), ignore_index=-100, reduction="sum"
            )
            count += int((tgt != -100).sum())
    else:
        stride = bptt
        if cfg.model.arch == "transformer":
            stride = cfg.eval.stride or max(1, bptt // 2)
        windows = WindowSet(inputs, targets, length=bptt, prefix=model.prefix, stride=stride)
        for start in range(0, len(windows), bs):
            x, tgt = windows.__getitems__(list(range(start, min(start + bs, len(windows)))))
            logits, _ = model(x.to(device))
            tgt = tgt.to(device)
            total += F.cross_entropy(
                logits.float().flatten(0, 1), tgt.flatten(), ignore_index=-100, reduction="sum"
            )
            count += int((tgt != -100).sum())
    model.train(was_training)
    if count != len(stream):
        raise RuntimeError(f"scored {count} tokens of {len(stream)}: the batching lost or repeated tokens")
    loss = total.item() / count
    return {"loss": loss, "ppl": math.exp(loss), "tokens": count}
