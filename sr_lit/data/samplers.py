"""Samplers that shard by rank themselves (the Trainer runs with ``use_distributed_sampler=False``).

Both subclass ``DistributedSampler`` so that Lightning never wraps them again, whatever that flag is
(it only injects its own sampler when the loader's sampler is not a DistributedSampler).
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

from torch.utils.data import DistributedSampler

__all__ = ["EpochKeyedSampler", "UnrepeatedDistributedSampler"]


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

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        return ((epoch, i) for i in super().__iter__())


class UnrepeatedDistributedSampler(DistributedSampler):
    """Rank r gets indices r, r + world, r + 2*world, ... in order: no padding, no repeats.

    Every evaluation image is scored exactly once over all ranks (a padded DistributedSampler counts
    some twice). Shards may differ in length by one, and a rank may get none when world > len(dataset):
    the evaluation code must reach its collectives (metric sync) the same number of times on every rank,
    i.e. sync once per epoch (torchmetrics ``compute``), never per batch.
    """

    def __init__(self, dataset: Sized, num_replicas: int = 1, rank: int = 0) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"invalid rank {rank} for num_replicas {num_replicas}")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)  # type: ignore[arg-type]
        self.num_samples = len(range(rank, len(dataset), num_replicas))
        self.total_size = len(dataset)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples
