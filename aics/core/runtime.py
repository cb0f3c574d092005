"""Seeding, device choice (cuda > mps > cpu), mixed precision on CUDA, determinism, CPU heap reuse."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading

import numpy as np
import torch

from aics.core.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` takes cuda, then mps, then cpu; an explicit choice that is not available is an error."""
    name = name or "auto"
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError(f"--device {name}: MPS is not available here; use --device cpu or auto")
    if kind not in DEVICE_CHOICES:
        raise UserError(f"--device {name}: unknown device; use one of {', '.join(DEVICE_CHOICES)}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Ask for deterministic kernels (slower on GPU); CPU training is reproducible either way."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Let glibc's malloc keep freed blocks of up to ``limit`` bytes for reuse instead of unmapping them.

    By default glibc gives every block over 32 MiB (at most) its own mmap and unmaps it when it is freed,
    so a CPU training step that makes and drops the same big tensors every time (an LM's batch x time x
    vocabulary logits, their log-softmax and their gradients: 45 MB each at 32 x 35 x 10k) page-faults and
    has the kernel zero all of them again on every step: about 15% of an LSTM LM step. Served from the heap,
    which is no longer trimmed, they are reused; the process keeps its peak heap in exchange. Returns False
    (and changes nothing) where the C library is not glibc.
    """
    if "CS_GNU_LIBC_VERSION" not in getattr(os, "confstr_names", {}):
        return False
    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
        return False
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameter numbers from <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, limit)) and bool(libc.mallopt(m_trim_threshold, limit))


def amp_enabled(device: torch.device, requested: bool) -> bool:
    """Mixed precision is used only on CUDA (CPU autocast is slower for these models)."""
    return requested and device.type == "cuda"


def bf16_native() -> bool:
    """bf16 in hardware (Ampere and later); older GPUs (V100, T4) only emulate it, slowly: fp16 there."""
    return torch.cuda.is_bf16_supported(including_emulation=False)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if not amp_enabled(device, enabled):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if bf16_native() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def grad_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16 autocast on CUDA (bf16 needs none)."""
    active = amp_enabled(device, enabled) and not bf16_native()
    return torch.amp.GradScaler("cuda", enabled=active)


def clipped_step(
    optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, parameters, clip: float
) -> torch.Tensor | None:
    """The optimizer step through the mixed-precision scaler, the gradient norm clipped to ``clip`` first (on
    the unscaled gradients; 0: no clipping). Returns the norm before clipping (None without clipping)."""
    norm = None
    if clip > 0:
        scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(parameters, clip)
    scaler.step(optimizer)
    scaler.update()
    return norm


class StopSignal:
    """Defers SIGINT/SIGTERM to a step boundary so a checkpoint is never taken mid-update.

    The first signal only sets ``requested``; the loop checks it after a whole step, saves, and stops.
    A second signal interrupts at once. Outside the main thread this does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
