"""Data order that resumes exactly and shards across ranks.

The order of epoch ``e`` is a pure function of ``(seed, e)``, so a checkpoint needs only the epoch and the
number of batches already taken. Under DDP each global batch of ``batch_size * world_size`` indices is cut
into one contiguous slice per rank, so N ranks with batch b see exactly the batches one process with
batch N*b would see.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class EpochBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if n <= 0:
            raise ValueError("EpochBatchSampler needs a non-empty dataset")
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        # With several ranks a short last global batch could leave a rank empty: drop it.
        self.drop_last = drop_last or world_size > 1
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def batches_per_epoch(self) -> int:
        full = self.n // self.global_batch
        return full if self.drop_last else math.ceil(self.n / self.global_batch)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.start_batch)

    def epoch_order(self) -> list[int]:
        """Every index of the current epoch, in the order batches are cut from (a pure function of the seed
        and the epoch; a subclass may reorder, say by length)."""
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        order = self.epoch_order()
        for b in range(self.start_batch, self.batches_per_epoch()):
            chunk = order[b * self.global_batch : (b + 1) * self.global_batch]
            lo = self.rank * self.batch_size
            yield chunk[lo : lo + self.batch_size]


class LengthGroupedSampler(EpochBatchSampler):
    """Shuffled batches of windows of similar length, so little padding is computed.

    The epoch's random order is cut into groups of ``group`` global batches; each group is sorted by length
    and cut into batches, and the batches of the whole epoch are shuffled again. Like its parent, the order
    is a pure function of (seed, epoch), so a resumed run continues exactly, and ranks share it under DDP.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, group: int = 50, **kwargs):
        super().__init__(len(lengths), batch_size, **kwargs)
        self.lengths, self.group = np.asarray(lengths), group

    def epoch_order(self) -> list[int]:
        order = np.asarray(super().epoch_order())
        if not self.shuffle:
            return order.tolist()
        size = self.global_batch * self.group
        for lo in range(0, len(order), size):
            part = order[lo : lo + size]
            order[lo : lo + size] = part[np.argsort(-self.lengths[part], kind="stable")]
        n_batches = math.ceil(len(order) / self.global_batch)
        g = torch.Generator().manual_seed(epoch_seed(self.seed + 1, self.epoch))
        batches = [order[b * self.global_batch : (b + 1) * self.global_batch] for b in range(n_batches)]
        # a short last batch stays last: the parent drops it under DDP
        shuffled = [batches[i] for i in torch.randperm(n_batches - 1, generator=g).tolist()] + batches[-1:]
        return np.concatenate(shuffled).tolist()


def build_loader(
    dataset: Dataset,
    sampler: EpochBatchSampler,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    pin_memory: bool = False,
    persistent_workers: bool = False,
) -> DataLoader:
    """A DataLoader for the sampler's current epoch; build one per epoch.

    Worker seeds come from a generator seeded by (seed, epoch), never from the global RNG, so creating the
    loader does not disturb the training RNG. Exact mid-epoch resume with ``num_workers > 0`` needs any
    per-sample randomness to be seeded from the sample index and epoch, not from the worker's RNG.

    With ``persistent_workers`` (and ``num_workers > 0``) build it once instead and iterate it again after
    each ``sampler.set_epoch``: the workers then live across epochs. They keep the copy of the dataset they
    started with, so nothing set on the dataset afterwards (its epoch, say) reaches them: the sampler's
    batches must carry what changes per epoch (for instance ``(epoch, index)`` pairs).
    """
    g = torch.Generator().manual_seed(epoch_seed(sampler.seed, 1_000_000 + sampler.epoch))
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        generator=g,
        persistent_workers=persistent_workers and num_workers > 0,
    )
