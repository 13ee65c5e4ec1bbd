"""Samplers that shard by rank themselves (the Trainer runs with ``use_distributed_sampler=False``).

Both subclass ``DistributedSampler`` so that Lightning never wraps them again, whatever that flag is
(it only injects its own sampler when the loader's sampler is not a DistributedSampler).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sized

from torch.utils.data import DistributedSampler

__all__ = ["PAD_INDEX", "EpochKeyedSampler", "UnrepeatedDistributedSampler"]


class EpochKeyedSampler(DistributedSampler):
    """Shuffled (or not) sharded training indices, yielded as ``(epoch, index)`` keys.

    Same shuffle and padding as ``DistributedSampler`` (every rank gets the same number of samples, so
    training steps stay in lockstep); the epoch travels with each index so the dataset can seed the
    patch RNG from (seed, epoch, index) even inside persistent workers, which never see ``set_epoch``.
    Works for one process too (num_replicas=1, rank=0). Lightning calls ``set_epoch`` every epoch.
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            dataset,  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )

        self.batches_done: Callable[[], int] | None = None
        self.batch_size = 1

    def follow(self, batches_done: Callable[[], int], batch_size: int) -> None:
        """Take each pass's position from the trainer: ``batches_done()`` batches trained so far in the fit (of
        ``batch_size`` samples on this rank; an epoch is len // batch_size batches, the rest dropped). A pass then
        yields epoch ``done // N`` from batch ``done % N`` on, whatever epoch number the trainer passes to
        ``set_epoch``: a run resumed mid-epoch trains on exactly the batches an uninterrupted run would."""
        self.batches_done, self.batch_size = batches_done, int(batch_size)

    def position(self) -> tuple[int, int]:
        """(epoch, samples to skip) of the next pass."""
        per_epoch = self.num_samples // self.batch_size
        if self.batches_done is None or per_epoch == 0:
            return self.epoch, 0
        epoch, batches = divmod(int(self.batches_done()), per_epoch)
        return epoch, batches * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch, skip = self.position()
        self.epoch = epoch  # DistributedSampler's shuffle is seeded by seed + epoch
        return ((epoch, i) for i in itertools.islice(super().__iter__(), skip, None))


PAD_INDEX = -1  # a placeholder item: evaluation datasets return one flagged `pad`, which is not scored


class UnrepeatedDistributedSampler(DistributedSampler):
    """Rank r gets indices r, r + world, r + 2*world, ... in order: no padding, no repeats.

    Every evaluation image is scored exactly once over all ranks (a padded DistributedSampler counts
    some twice). Shards may differ in length by one. A rank that would get none (world > len(dataset): Set5 on
    8 GPUs) gets one ``PAD_INDEX`` instead: Lightning refuses a zero-length loader on some ranks, and a rank that
    skipped validation would leave the others waiting in the metric sync. The evaluation code must reach its
    collectives the same number of times on every rank, i.e. sync once per epoch (torchmetrics ``compute``).
    """

    def __init__(self, dataset: Sized, num_replicas: int = 1, rank: int = 0) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"invalid rank {rank} for num_replicas {num_replicas}")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)  # type: ignore[arg-type]
        self.indices = list(range(rank, len(dataset), num_replicas)) or [PAD_INDEX]
        self.num_samples = len(self.indices)
        self.total_size = len(dataset)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return self.num_samples
