"""A fixed share of every source (CSRI branch) in every batch, each source cycling on its own.

The pattern of mmdetection's ``MultiSourceSampler`` (semi-supervised detection):
one dataset per source joined by a ``ConcatDataset``, a per-batch quota per source,
one endless seeded index stream per source, and ranks taking every
``world_size``-th element of each stream. Generalised here to N sources, with
sources optionally named by their CSRI branch (``lrfr.structures.BRANCHES``).
"""
import itertools
import logging
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import MessageHub, print_log
from torch.utils.data import Sampler

from lrfr.registry import DATA_SAMPLERS


def source_quotas(batch_size: int, ratios: Sequence[float]) -> List[int]:
    """Per-batch sample count of each source: ``int(batch * r_i / sum(r))``, the remainder to source 0.

    Example: ``batch_size=128, ratios=[1, 1]`` -> ``[64, 64]``; ``batch_size=10,
    ratios=[1, 2]`` -> ``[4, 6]`` (3 + the remainder 1, and 6).

    Args:
        batch_size (int): samples per batch (per rank).
        ratios (Sequence[float]): positive share of each source.
    """
    total = float(sum(ratios))
    quotas = [int(batch_size * r / total) for r in ratios]
    quotas[0] += batch_size - sum(quotas)
    return quotas


def source_branch(dataset) -> Optional[str]:
    """The CSRI branch of a source dataset: its ``branch`` attribute or ``metainfo['branch']``."""
    branch = getattr(dataset, 'branch', None)
    if branch is None:
        branch = getattr(dataset, 'metainfo', {}).get('branch')
    return branch


@DATA_SAMPLERS.register_module()
class MultiBranchSampler(Sampler):
    """Infinite sampler over a ``ConcatDataset`` giving every batch a fixed quota of each source.

    For CSRI (Cheng et al., ACCV 2018) the sources are the synthetic branch (LR/HR
    pairs from an auxiliary HR set, e.g. CelebA, 202k images) and the native branch
    (TinyFace training, 7.8k images); ``batch_size=128, source_ratio=[1, 1]`` gives
    64 + 64 in every batch. Quotas follow :func:`source_quotas`.

    Each source ``s`` has its own endless index stream: permutations of
    ``range(len(source_s))`` drawn from ``default_rng([seed, epoch, s])``, a fresh
    one at each pass, so a small source cycles on its own while a large one is
    still in its first pass. Rank ``r`` of ``world_size`` takes elements
    ``r, r + world_size, ...`` of each stream, so within a pass the ranks' shards
    are disjoint. ``__iter__`` yields, batch after batch, ``quota_0`` indices of
    source 0, then ``quota_1`` of source 1, ... (global ``ConcatDataset`` indices).
    **The DataLoader's** ``batch_size`` **must equal this** ``batch_size`` (use one
    config variable for both) so that each yielded group is exactly one batch.

    Length and epochs: the sampler never ends; it is for ``IterBasedTrainLoop``
    (``train_cfg=dict(by_epoch=False, max_iters=N)``, ``log_processor=dict(by_epoch=False)``,
    schedulers with ``by_epoch=False``), which treats the whole run as one epoch of
    ``max_iters`` iterations. ``len()`` reports exactly that, ``max_iters * batch_size``
    indices (so ``len(dataloader) == max_iters``), never the dataset size. During a run
    ``max_iters`` is the runner's (mmengine's ``RuntimeInfoHook`` publishes it in the
    message hub before training; ``LoggerHook`` asks ``len(train_dataloader)`` every
    iteration). Before the run, ``Runner.build_param_scheduler`` already asks for the
    length (as ``epoch_length``), so pass ``num_iters=max_iters``; without it ``len()``
    raises a ``TypeError`` that says so. If ``num_iters`` and the running
    ``max_iters`` differ (e.g. ``--cfg-options train_cfg.max_iters=...``) a warning is
    logged once and the run's value wins.

    Resuming: the index stream is a function of ``seed`` (and ``epoch``) only. In
    mmengine 0.10.7 ``IterBasedTrainLoop.run`` resumes by calling ``next()`` on
    the dataloader iterator once per already-trained iteration, so a resumed run
    with the same seed sees exactly the batches a straight run would (tested);
    those replayed batches are loaded and decoded, which costs time on long
    runs. The runner builds this sampler before it reads the checkpoint, so set
    ``randomness=dict(seed=<int>)`` in the config: with ``seed=None`` mmengine
    draws a new seed per run and a resumed run gets another order. A loop that
    fast-forwards without replaying can call :meth:`set_start_batch` before
    creating the dataloader iterator: the stream positions are computed, not
    replayed (``quota_s * world_size`` elements of stream ``s`` per batch).

    Args:
        dataset (ConcatDataset): one dataset per source (mmengine or torch
            ``ConcatDataset``; anything with ``.datasets``).
        batch_size (int): samples per batch on each rank.
        source_ratio (Sequence[float] | Dict[str, float]): share of each source,
            in ``dataset.datasets`` order, or keyed by branch name (each source's
            ``branch``, e.g. ``{BRANCH_SYN: 1, BRANCH_NAT: 1}``).
        shuffle (bool): permute each pass; False walks ``0..n-1`` repeatedly.
            Defaults to True.
        seed (int, optional): stream seed, identical on all ranks; None draws one
            on rank 0 and broadcasts it (mmengine ``sync_random_seed``). Defaults to None.
        rank (int, optional): this process's rank; None asks ``mmengine.dist``. Defaults to None.
        world_size (int, optional): number of ranks; None asks ``mmengine.dist``. Defaults to None.
        num_iters (int, optional): the run's ``max_iters``, which defines ``len()``.
            Defaults to None (``len()`` raises until a run publishes its ``max_iters``).
    """

    def __init__(self,
                 dataset,
                 batch_size: int,
                 source_ratio: Union[Sequence[float], Dict[str, float]],
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None,
                 num_iters: Optional[int] = None) -> None:
        if not hasattr(dataset, 'datasets'):
            raise TypeError('MultiBranchSampler needs a ConcatDataset of one dataset per source '
                            f'(with a .datasets list), got {type(dataset).__name__}')
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
        dist_rank, dist_world = get_dist_info()
        self.rank = dist_rank if rank is None else int(rank)
        self.world_size = dist_world if world_size is None else int(world_size)
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f'need 0 <= rank < world_size, got rank={self.rank}, '
                             f'world_size={self.world_size}')

        if num_iters is not None and (not isinstance(num_iters, (int, np.integer)) or num_iters < 1):
            raise ValueError(f'num_iters must be a positive int (the run\'s max_iters) or None, '
                             f'got {num_iters!r}')
        self.num_iters = num_iters
        self._warned = False
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        self._start_batch = 0

        sources = list(dataset.datasets)
        self.sizes = [len(d) for d in sources]
        self.offsets = [0] + list(itertools.accumulate(self.sizes))[:-1]
        self.branches = [source_branch(d) for d in sources]
        self.ratios = self._ratios(source_ratio)
        empty = [i for i, n in enumerate(self.sizes) if n == 0]
        if empty:
            raise ValueError(f'MultiBranchSampler: source(s) {empty} of the ConcatDataset are empty')
        self.quotas = source_quotas(self.batch_size, self.ratios)
        if min(self.quotas) < 1:
            raise ValueError(f'batch_size={self.batch_size} with source_ratio={self.ratios} gives '
                             f'quotas {self.quotas}: every source needs at least one sample per batch')

    def _ratios(self, source_ratio) -> List[float]:
        """Source ratios in ``dataset.datasets`` order (a dict is matched by branch name)."""
        n = len(self.sizes)
        if isinstance(source_ratio, dict):
            if len(set(self.branches)) != n or None in self.branches:
                raise ValueError('source_ratio given by branch name needs one distinct branch per '
                                 f'source; the sources have branches {self.branches}')
            unknown = set(source_ratio) ^ set(self.branches)
            if unknown:
                raise ValueError(f'source_ratio keys {sorted(source_ratio)} must be the sources\' '
                                 f'branches {self.branches}')
            ratios = [source_ratio[b] for b in self.branches]
        else:
            ratios = list(source_ratio)
            if len(ratios) != n:
                raise ValueError(f'source_ratio has {len(ratios)} entries for {n} sources')
        if any(not isinstance(r, (int, float)) or r <= 0 for r in ratios):
            raise ValueError(f'source_ratio entries must be positive numbers, got {ratios}')
        return [float(r) for r in ratios]

    def _stream(self, source: int, start: int) -> Iterator[int]:
        """Endless per-source index stream (one permutation per pass) from element ``start`` on."""
        size = self.sizes[source]
        rng = np.random.default_rng([self.seed, self.epoch, source])
        passes, offset = divmod(start, size)
        for _ in range(passes):  # skip whole passes: one permutation each, no per-element work
            if self.shuffle:
                rng.permutation(size)
        while True:
            order = rng.permutation(size) if self.shuffle else np.arange(size)
            yield from order[offset:].tolist()
            offset = 0

    def __iter__(self) -> Iterator[int]:
        """Yield global indices, one batch (``sum(quotas)`` indices) after another, forever."""
        streams = []
        for s, quota in enumerate(self.quotas):
            start = self._start_batch * quota * self.world_size + self.rank
            streams.append(itertools.islice(self._stream(s, start), 0, None, self.world_size))
        while True:
            for s, quota in enumerate(self.quotas):
                offset = self.offsets[s]
                for idx in itertools.islice(streams[s], quota):
                    yield offset + idx

    def __len__(self) -> int:
        """``max_iters * batch_size``: the indices one run draws on this rank (see the class notes)."""
        running = MessageHub.get_current_instance().get_info('max_iters')
        if running is not None:
            if self.num_iters is not None and self.num_iters != running and not self._warned:
                self._warned = True
                print_log(f'MultiBranchSampler: num_iters={self.num_iters} but the run has max_iters='
                          f'{running}; using {running}', logger='current', level=logging.WARNING)
            return int(running) * self.batch_size
        if self.num_iters is None:
            raise TypeError(
                'MultiBranchSampler is infinite: its length is the run\'s iterations. Pass '
                'num_iters=<train_cfg.max_iters> to the sampler (mmengine\'s Runner asks '
                'len(train_dataloader) when it builds the parameter schedulers) and train with '
                'IterBasedTrainLoop (train_cfg=dict(by_epoch=False, max_iters=N), '
                'log_processor=dict(by_epoch=False))')
        return self.num_iters * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Derive the streams of the next ``__iter__`` from ``(seed, epoch)``.

        mmengine's ``IterBasedTrainLoop`` never calls it with an infinite sampler
        (its iterator never stops); it is here for loops that restart iteration.
        """
        self.epoch = int(epoch)

    def set_start_batch(self, num_batches: int) -> None:
        """Make the next ``__iter__`` start after ``num_batches`` batches (fast resume without replay)."""
        if num_batches < 0:
            raise ValueError(f'num_batches must be >= 0, got {num_batches}')
        self._start_batch = int(num_batches)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(batch_size={self.batch_size}, quotas={self.quotas}, '
                f'sizes={self.sizes}, branches={self.branches}, seed={self.seed}, '
                f'rank={self.rank}/{self.world_size})')
