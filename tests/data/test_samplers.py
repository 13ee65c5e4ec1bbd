"""Samplers: unpadded evaluation shards, epoch-keyed training indices."""

from __future__ import annotations

import pytest

from sr_lit.data.samplers import PAD_INDEX, EpochKeyedSampler, UnrepeatedDistributedSampler


def test_unrepeated_world2_over5() -> None:
    data = list(range(5))
    shards = [list(UnrepeatedDistributedSampler(data, num_replicas=2, rank=r)) for r in range(2)]
    assert shards == [[0, 2, 4], [1, 3]]
    assert [len(UnrepeatedDistributedSampler(data, 2, r)) for r in range(2)] == [3, 2]
    assert sorted(shards[0] + shards[1]) == data


def test_unrepeated_more_ranks_than_items() -> None:
    # no rank may be empty (Lightning refuses it, and the others would wait for it): a placeholder instead
    shards = [list(UnrepeatedDistributedSampler([0, 1], 4, r)) for r in range(4)]
    assert shards == [[0], [1], [PAD_INDEX], [PAD_INDEX]]
    with pytest.raises(ValueError):
        UnrepeatedDistributedSampler([0], 2, 2)


def test_epoch_keyed_sampler() -> None:
    data = list(range(10))
    s = EpochKeyedSampler(data, num_replicas=1, rank=0, seed=1)
    e0 = list(s)
    assert all(k[0] == 0 for k in e0) and sorted(k[1] for k in e0) == data
    s.set_epoch(3)
    e3 = list(s)
    assert all(k[0] == 3 for k in e3) and [k[1] for k in e3] != [k[1] for k in e0]
    # sharded: equal lengths (padded like DistributedSampler), together cover everything
    shards = [list(EpochKeyedSampler(list(range(5)), 2, r, seed=1)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3
    assert {k[1] for k in shards[0] + shards[1]} == set(range(5))


def test_epoch_keyed_sampler_follows_the_batches_trained() -> None:
    data = list(range(10))  # batch 3: 3 batches per epoch, one sample dropped
    plain = EpochKeyedSampler(data, seed=1)
    epochs = []
    for e in range(3):
        plain.set_epoch(e)
        epochs.append(list(plain)[:9])
    done = [0]
    s = EpochKeyedSampler(data, seed=1)
    s.follow(lambda: done[0], batch_size=3)
    s.set_epoch(7)  # ignored: the position comes from the batches trained
    assert list(s)[:9] == epochs[0]
    done[0] = 4  # resumed after epoch 0 and one batch of epoch 1
    assert list(s)[:6] == epochs[1][3:]
    done[0] = 6
    assert list(s)[:9] == epochs[2]
