"""Logging: stderr/file log lines, tqdm progress bars, TensorBoard scalars/images, ``metrics.jsonl``.

Only rank 0 writes; progress bars are quiet when stderr is not a terminal (AICS_PROGRESS=1 forces them).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aics.core.io import append_jsonl, read_jsonl, write_jsonl

LOGGER_NAME = "aics"


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


class QuietFileHandler(logging.FileHandler):
    """A log file that cannot be written (a full disk) drops the line instead of printing a traceback: the
    same line still reaches stderr, and the error that stops the run says what happened."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def setup_logging(log_file: str | Path | None = None, is_main: bool = True, verbose: bool = False) -> None:
    """Log lines go to stderr (rank 0 only) and, when given, to ``log_file``."""
    logger = get_logger()
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logger.propagate = False
    if not is_main:
        logger.addHandler(logging.NullHandler())
        return
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = QuietFileHandler(log_file, encoding="utf-8")
        fh.setFormatter(fmt)
        logger.addHandler(fh)


def progress(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any):
    """A tqdm bar, shown only on a terminal (or when AICS_PROGRESS=1), never on non-main ranks."""
    from tqdm.auto import tqdm

    forced = os.environ.get("AICS_PROGRESS")
    if not enabled or forced == "0":
        disable: bool | None = True
    elif forced == "1":
        disable = False
    else:
        disable = None  # tqdm: off when not a TTY
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, disable=disable, **kwargs)


class RunMeter:
    """Running sums of the current epoch (losses, token or image counts) and the training time of the whole
    run, kept in checkpoints so that a run resumed mid-epoch logs the same epoch means and throughput as
    one never interrupted::

        meter = RunMeter.from_state(saved_state_or_none, mid_epoch=batch_in_epoch > 0)
        meter.start()                       # the clock runs during training steps only
        meter.add(loss=l * n, tokens=n)
        extra["meter"] = meter.state()      # in every checkpoint
        means = meter.epoch_means("tokens", "loss"); meter.end_epoch()
    """

    def __init__(self) -> None:
        self.epoch: dict[str, float] = {}
        self.total: dict[str, float] = {}
        self._seconds = 0.0
        self._since: float | None = None

    @classmethod
    def from_state(cls, state: dict | None, mid_epoch: bool = True) -> RunMeter:
        meter = cls()
        if state:
            meter.total = {k: float(v) for k, v in state.get("total", {}).items()}
            meter._seconds = float(state.get("seconds", 0.0))
            if mid_epoch:
                meter.epoch = {k: float(v) for k, v in state.get("epoch", {}).items()}
        return meter

    def start(self) -> None:
        if self._since is None:
            self._since = time.perf_counter()

    def pause(self) -> None:
        if self._since is not None:
            self._seconds += time.perf_counter() - self._since
            self._since = None

    @property
    def seconds(self) -> float:
        running = 0.0 if self._since is None else time.perf_counter() - self._since
        return self._seconds + running

    def add(self, **values: float) -> None:
        """Add to the epoch's sums and the run's totals."""
        for k, v in values.items():
            self.epoch[k] = self.epoch.get(k, 0.0) + float(v)
            self.total[k] = self.total.get(k, 0.0) + float(v)

    def epoch_means(self, count: str, *keys: str) -> dict[str, float]:
        """``sum(key) / sum(count)`` over the epoch so far for each key (empty when nothing was counted)."""
        n = self.epoch.get(count, 0.0)
        return {k: self.epoch.get(k, 0.0) / n for k in keys} if n else {}

    def rate(self, key: str) -> float:
        """The run's ``key`` per second of training."""
        return self.total.get(key, 0.0) / max(self.seconds, 1e-9)

    def end_epoch(self) -> None:
        self.epoch = {}

    def state(self) -> dict:
        return {"epoch": dict(self.epoch), "total": dict(self.total), "seconds": self.seconds}


class MetricsLogger:
    """Scalars to TensorBoard (``<exp>/tb``) and to ``<exp>/log/metrics.jsonl``; images to TensorBoard.

    ``resume_step`` drops records written after that step by an interrupted run, in both places; with
    ``resume_epoch`` (the epochs the checkpoint has finished) also the end-of-epoch records of a later
    epoch at that same step (written before the epoch's checkpoint, which the run did not live to save).
    Rows of split ``train`` are written during an epoch; every other split at the end of epoch ``epoch``.
    """

    def __init__(
        self,
        exp_dir: str | Path,
        enabled: bool = True,
        resume_step: int | None = None,
        resume_epoch: int | None = None,
    ):
        self.exp_dir = Path(exp_dir)
        self.enabled = enabled
        self.jsonl = self.exp_dir / "log" / "metrics.jsonl"
        self._resume_step = resume_step
        self._tb = None
        if enabled and resume_step is not None and self.jsonl.exists():

            def kept(r: dict) -> bool:
                late = (
                    resume_epoch is not None
                    and r.get("split") != "train"
                    and r.get("epoch", 0) > resume_epoch
                )
                return r.get("step", 0) <= resume_step and not late

            write_jsonl(self.jsonl, [r for r in read_jsonl(self.jsonl) if kept(r)])

    @property
    def tb(self):
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events at and after it; keep the resumed step's own events
            purge = None if self._resume_step is None else self._resume_step + 1
            self._tb = SummaryWriter(str(self.exp_dir / "tb"), purge_step=purge)
        return self._tb

    def scalars(self, split: str, step: int, values: dict[str, float], **fields: Any) -> None:
        if not self.enabled:
            return
        for k, v in values.items():
            self.tb.add_scalar(f"{split}/{k}", float(v), step)
        record = {"split": split, "step": step, **fields, **{k: float(v) for k, v in values.items()}}
        record["time"] = round(time.time(), 3)
        append_jsonl(self.jsonl, record)

    def image(self, tag: str, image_chw, step: int) -> None:
        """``image_chw``: a float tensor (C, H, W) in [0, 1]."""
        if self.enabled:
            self.tb.add_image(tag, image_chw, step)

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
