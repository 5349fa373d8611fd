"""MultiBranchSampler: per-batch shares, independent cycling, DDP shards, determinism, resume."""
import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.dataset import BaseDataset, ConcatDataset
from torch.utils.data import DataLoader

import lrfr.datasets  # noqa: F401  (registers the sampler)
from lrfr.datasets.samplers import source_quotas
from lrfr.registry import DATA_SAMPLERS
from lrfr.structures import BRANCH_NAT, BRANCH_SYN


class _Source(BaseDataset):
    """A source of ``n`` items ``(branch, i)``, carrying its branch like lrfr's face datasets."""

    def __init__(self, n, branch=None):
        self.n, self.branch = n, branch
        super().__init__(serialize_data=False)

    def load_data_list(self):
        return [dict(i=i) for i in range(self.n)]

    def __getitem__(self, i):
        return (self.branch, i)


def _concat(*sizes, branches=None):
    branches = branches or [None] * len(sizes)
    return ConcatDataset([_Source(n, b) for n, b in zip(sizes, branches)])


def _sampler(dataset, **kw):
    cfg = dict(type='MultiBranchSampler', dataset=dataset, seed=0, rank=0, world_size=1)
    cfg.update(kw)
    return DATA_SAMPLERS.build(cfg)


def _batches(sampler, n):
    it = iter(sampler)
    return [list(itertools.islice(it, sampler.batch_size)) for _ in range(n)]


def test_source_quotas():
    assert source_quotas(128, [1, 1]) == [64, 64]
    assert source_quotas(10, [1, 2]) == [4, 6]  # int(3.33)=3 (+1 remainder), int(6.67)=6
    assert source_quotas(7, [1, 1, 1]) == [3, 2, 2]


def test_per_batch_shares_with_very_different_sizes():
    ds = _concat(200, 7)
    sampler = _sampler(ds, batch_size=8, source_ratio=[1, 1])
    batches = _batches(sampler, 30)
    seen_small = []
    for batch in batches:
        assert len(batch) == 8
        src = [0 if i < 200 else 1 for i in batch]
        assert Counter(src) == {0: 4, 1: 4}
        seen_small += [i - 200 for i in batch if i >= 200]
    # The small source cycles on its own: every pass of 7 is a permutation of 0..6.
    for p in range(len(seen_small) // 7):
        assert sorted(seen_small[7 * p:7 * p + 7]) == list(range(7))
    # The big source is still in its first pass (120 of 200 drawn): no repeats yet.
    big = [i for b in batches for i in b if i < 200]
    assert len(big) == len(set(big)) == 120
    # Successive passes of the small source are fresh permutations.
    passes = {tuple(seen_small[7 * p:7 * p + 7]) for p in range(len(seen_small) // 7)}
    assert len(passes) > 1


def test_three_sources_and_dataloader_batches():
    ds = _concat(50, 20, 9, branches=['s0', 's1', 's2'])  # tags only to tell the sources apart
    sampler = _sampler(ds, batch_size=12, source_ratio=[2, 1, 1])
    assert sampler.quotas == [6, 3, 3]
    loader = DataLoader(ds, batch_size=12, sampler=sampler, collate_fn=list)
    for batch in itertools.islice(iter(loader), 5):
        assert Counter(tag for tag, _ in batch) == {'s0': 6, 's1': 3, 's2': 3}


def test_ratio_by_branch_name():
    ds = _concat(30, 10, branches=[BRANCH_SYN, BRANCH_NAT])
    sampler = _sampler(ds, batch_size=6, source_ratio={BRANCH_NAT: 1, BRANCH_SYN: 2})
    assert sampler.quotas == [4, 2] and sampler.branches == [BRANCH_SYN, BRANCH_NAT]
    loader = DataLoader(ds, batch_size=6, sampler=sampler, collate_fn=list)
    batch = next(iter(loader))
    assert Counter(b for b, _ in batch) == {BRANCH_SYN: 4, BRANCH_NAT: 2}
    with pytest.raises(ValueError, match='branches'):
        _sampler(ds, batch_size=6, source_ratio={BRANCH_SYN: 1, 'other': 1})
    with pytest.raises(ValueError, match='one distinct branch'):
        _sampler(_concat(5, 5), batch_size=4, source_ratio={BRANCH_SYN: 1})


def test_ddp_ranks_are_disjoint_and_cover():
    ds = _concat(64, 16)
    world = 4
    per_rank = [_batches(_sampler(ds, batch_size=4, source_ratio=[1, 1], rank=r, world_size=world), 8)
                for r in range(world)]
    for batches in per_rank:
        assert all(Counter(i < 64 for i in b) == {True: 2, False: 2} for b in batches)
    big = [set(i for b in batches for i in b if i < 64) for batches in per_rank]
    # 8 batches x 2 big-source samples x 4 ranks = 64 = one pass: disjoint shards covering it.
    assert all(len(s) == 16 for s in big)
    assert set().union(*big) == set(range(64))
    assert sum(len(s) for s in big) == 64
    # First pass of the small source (16 = 2 batches x 2 x 4 ranks) is also split disjointly.
    small = [set(i for b in batches[:2] for i in b if i >= 64) for batches in per_rank]
    assert set().union(*small) == set(range(64, 80)) and sum(len(s) for s in small) == 16


def test_determinism_under_seed():
    ds = _concat(100, 13)
    a = _batches(_sampler(ds, batch_size=10, source_ratio=[1, 1], seed=3), 6)
    b = _batches(_sampler(ds, batch_size=10, source_ratio=[1, 1], seed=3), 6)
    c = _batches(_sampler(ds, batch_size=10, source_ratio=[1, 1], seed=4), 6)
    assert a == b and a != c
    s = _sampler(ds, batch_size=10, source_ratio=[1, 1], seed=3)
    s.set_epoch(1)
    assert _batches(s, 6) != a


def test_resume_replay_and_fast_forward_match_a_straight_run():
    """mmengine 0.10.7 resumes IterBasedTrainLoop by next()-ing the dataloader k times."""
    ds = _concat(40, 6)

    def loader(sampler):
        return DataLoader(ds, batch_size=sampler.batch_size, sampler=sampler, collate_fn=list)

    straight = list(itertools.islice(iter(loader(_sampler(ds, batch_size=4, source_ratio=[1, 1]))), 12))
    it = iter(loader(_sampler(ds, batch_size=4, source_ratio=[1, 1])))
    for _ in range(5):  # what IterBasedTrainLoop.run does after resume(iter=5)
        next(it)
    assert list(itertools.islice(it, 7)) == straight[5:]
    fast = _sampler(ds, batch_size=4, source_ratio=[1, 1])
    fast.set_start_batch(5)
    assert list(itertools.islice(iter(loader(fast)), 7)) == straight[5:]
    # Fast-forward also holds per rank under DDP.
    ranked = _sampler(ds, batch_size=4, source_ratio=[1, 1], rank=1, world_size=2)
    ref = _batches(ranked, 9)
    ranked.set_start_batch(4)
    assert _batches(ranked, 5) == ref[4:]


def test_len_refuses_and_bad_configs_raise():
    ds = _concat(10, 10)
    sampler = _sampler(ds, batch_size=4, source_ratio=[1, 1])
    MessageHub.get_instance('no_run_in_progress')  # a fresh current hub: no runner's max_iters
    with pytest.raises(TypeError, match='num_iters'):
        len(sampler)
    sized = _sampler(ds, batch_size=4, source_ratio=[1, 1], num_iters=25)
    assert len(sized) == 100  # the run's indices (before the run: num_iters), not the dataset size (20)
    assert len(DataLoader(ds, batch_size=4, sampler=sized)) == 25
    with pytest.raises(ValueError, match='num_iters'):
        _sampler(ds, batch_size=4, source_ratio=[1, 1], num_iters=0)
    with pytest.raises(TypeError, match='ConcatDataset'):
        _sampler(_Source(5), batch_size=4, source_ratio=[1])
    with pytest.raises(ValueError, match='entries'):
        _sampler(ds, batch_size=4, source_ratio=[1, 1, 1])
    with pytest.raises(ValueError, match='positive'):
        _sampler(ds, batch_size=4, source_ratio=[1, 0])
    with pytest.raises(ValueError, match='at least one sample'):
        _sampler(ds, batch_size=4, source_ratio=[10, 1])
    with pytest.raises(ValueError, match='empty'):
        _sampler(_concat(5, 0), batch_size=4, source_ratio=[1, 1])
    with pytest.raises(ValueError, match='rank'):
        _sampler(ds, batch_size=4, source_ratio=[1, 1], rank=2, world_size=2)
    with pytest.raises(ValueError, match='batch_size'):
        _sampler(ds, batch_size=0, source_ratio=[1, 1])


def test_no_shuffle_walks_in_order():
    ds = _concat(5, 3)
    batch = _batches(_sampler(ds, batch_size=4, source_ratio=[1, 1], shuffle=False), 3)
    assert batch == [[0, 1, 5, 6], [2, 3, 7, 5], [4, 0, 6, 7]]
    assert np.all(np.diff([b[0] for b in batch]) >= -5)


class _Recorder(BaseModel):
    """Records the samples of every trained batch; a zero-learning-rate parameter keeps mmengine happy."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='loss'):
        self.seen.append([tuple(x.tolist()) for x in inputs])
        return dict(loss=(self.w * 0).sum())


class _Pairs(_Source):
    def __getitem__(self, i):
        return dict(inputs=torch.tensor([0 if self.branch == BRANCH_SYN else 1, i]))


def _runner(work_dir, **kw):
    ds = ConcatDataset([_Pairs(23, BRANCH_SYN), _Pairs(5, BRANCH_NAT)])
    return Runner(
        model=_Recorder(), work_dir=str(work_dir), default_scope='lrfr',
        train_dataloader=dict(dataset=ds, batch_size=4, num_workers=0,
                              sampler=dict(type='MultiBranchSampler', batch_size=4, source_ratio=[1, 1],
                                           num_iters=100)),  # stale on purpose: the run's max_iters wins
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=100)),
        log_processor=dict(by_epoch=False), randomness=dict(seed=3), **kw)


def test_mmengine_runner_resume_sees_the_straight_run_batches(tmp_path):
    straight = _runner(tmp_path)
    straight.train()
    # During the run len() is the runner's max_iters (LoggerHook asked it every iteration), not num_iters.
    assert len(straight.train_dataloader) == 6
    assert len(straight.model.seen) == 6
    for batch in straight.model.seen:
        assert Counter(branch for branch, _ in batch) == {0: 2, 1: 2}
    resumed = _runner(tmp_path / 'resumed', load_from=str(tmp_path / 'iter_3.pth'), resume=True)
    resumed.train()
    assert resumed.model.seen == straight.model.seen[3:]
