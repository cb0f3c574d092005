import pytest

from aics.core.loader import EpochBatchSampler


def batches(**kw):
    s = EpochBatchSampler(**kw)
    return s


def test_order_is_a_function_of_seed_and_epoch():
    s = EpochBatchSampler(50, 8, seed=3)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    s.set_epoch(0)
    assert list(s) == e0 and e0 != e1
    assert sorted(i for b in e0 for i in b) == list(range(50)), "every index once per epoch"
    assert [len(b) for b in e0] == [8] * 6 + [2]


def test_start_batch_continues_mid_epoch():
    s = EpochBatchSampler(50, 8, seed=3)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start_batch=4)
    assert list(s) == full[4:] and len(s) == 3


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_split_each_global_batch(world):
    single = EpochBatchSampler(50, 4 * world, seed=1, drop_last=True)
    single.set_epoch(5)
    ranks = []
    for r in range(world):
        s = EpochBatchSampler(50, 4, seed=1, rank=r, world_size=world)
        s.set_epoch(5)
        ranks.append(list(s))
    assert all(len(r) == len(ranks[0]) for r in ranks), "every rank takes the same number of steps"
    for k, global_batch in enumerate(single):
        assert sum((r[k] for r in ranks), []) == global_batch


def test_unshuffled_order():
    s = EpochBatchSampler(5, 2, shuffle=False)
    assert list(s) == [[0, 1], [2, 3], [4]]
