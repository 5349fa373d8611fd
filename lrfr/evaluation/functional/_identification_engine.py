"""How :func:`lrfr.evaluation.functional.evaluate_identification` counts ranks fast (private).

The protocol module defines what a rank is; this engine counts, for every (probe,
true match) pair, the gallery items that rank before the match, without sorting:
one matrix product per block of probes x gallery columns, then comparisons with
per-pair thresholds. Scores computed here depend on the BLAS kernel and on how the
gallery is sliced, so they only decide pairs whose gap exceeds a proven error bound;
near-ties go to :mod:`._near_ties`, which decides them from the feature values alone.

Threading: the matrix products use the caller's intra-op thread count, every other
(memory-bound) operation one thread, the comparisons shared by a thread pool created
for the call and shut down when it returns; the previous thread count is restored on
exit, also on exceptions. See docs/evaluation.md, "How it is computed".
"""
import concurrent.futures
import contextlib
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from . import _near_ties

# Block sizes (probes, gallery columns per matrix product). On a CPU each product is
# counted in 2048-column slices, a (256 x 2048) float32 slice (2 MiB) staying in cache;
# with several threads the products are wider (16384 columns: fewer thread
# synchronisations, which cost dearly when cores are shared). A GPU counts whole blocks.
_CPU_BLOCK = (256, 2048)
_CPU_BLOCK_THREADED = (256, 16384)
_GPU_BLOCK = (2048, 32768)
_CPU_COUNT_WIDTH = 2048

Group = Tuple[int, int, int, int]


def default_block(device: torch.device, threads: int) -> Tuple[int, int]:
    """Default ``(chunk_size, gallery_chunk_size)`` for a device and intra-op thread count."""
    if device.type == 'cuda':
        return _GPU_BLOCK
    return _CPU_BLOCK_THREADED if threads > 1 else _CPU_BLOCK


def _matmul(probes: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """The engine's one matrix product ``probes @ items.T`` (tests substitute another BLAS)."""
    return probes @ items.T


@contextlib.contextmanager
def cpu_threads(threads: int, device: torch.device) -> Iterator[None]:
    """Run a block with ``threads`` intra-op CPU threads, then restore the previous count
    (also when the block raises).

    The evaluation runs its many small memory-bound operations with one intra-op
    thread and gives every thread back to the matrix products only: on shared cores
    each small operation's OpenMP barrier can wait a whole scheduler time slice for a
    descheduled thread (measured: 10-20x slower overall on a busy 2-core machine).
    No effect on GPU.
    """
    previous = torch.get_num_threads()
    if device.type != 'cpu' or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Scorer:
    """Score blocks ``s = ||g||^2 - 2 p.g`` (Euclidean) or ``-cos(p, g)``: lower is better.

    Probe rows are pre-scaled once (``-2 p`` is exact; ``-p/||p||`` is shared by every
    block) and each gallery item's ``||g||^2`` (or ``1/||g||``) is computed once. Also
    holds float64 upper bounds of every norm, for the error bounds of the scores.

    Args:
        probe (torch.Tensor): ``(P, D)`` probe features.
        gallery (torch.Tensor): ``(G, D)`` gallery features.
        distance (str): ``'euclidean'`` or ``'cosine'``.
        block (int): rows per step when computing the norms (bounds the temporary).
        gemm_threads (int): CPU threads for the matrix products. Defaults to 1.
    """

    def __init__(self, probe: torch.Tensor, gallery: torch.Tensor, distance: str, block: int,
                 gemm_threads: int = 1) -> None:
        self.gallery = gallery
        self.distance = distance
        self.gemm_threads = gemm_threads
        self.gallery_norms = _near_ties.norms(gallery, block)
        self.probe_norms = _near_ties.norms(probe, block)
        # NaN/Inf anywhere in a row (or an overflowing norm) shows in its squared norm:
        # one check on N numbers instead of a pass over N x D.
        _check_finite(self.gallery_norms.sq.to(gallery.dtype), 'gallery_feats')
        _check_finite(self.probe_norms.sq.to(probe.dtype), 'probe_feats')
        if distance == 'euclidean':
            # summed in float64, rounded once: the score bound's gamma_4 ||g||^2 term
            self.bias = self.gallery_norms.sq.to(gallery.dtype)
        else:  # same eps as F.normalize
            _near_ties.check_cosine_norms(self.gallery_norms.upper, 'gallery_feats')
            _near_ties.check_cosine_norms(self.probe_norms.upper, 'probe_feats')
            norm = self.gallery_norms.sq.sqrt().clamp_min(_near_ties.COSINE_MIN_NORM)
            self.inv_norm = (1.0 / norm).to(gallery.dtype)

    def prepare_probes(self, probe: torch.Tensor) -> torch.Tensor:
        if self.distance == 'euclidean':
            return probe * -2.0
        return -F.normalize(probe, dim=1, eps=_near_ties.COSINE_MIN_NORM)

    def __call__(self, probes: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        """Scores ``(len(probes), len(index))`` against gallery items ``index`` (ascending)."""
        if index[-1] - index[0] == len(index) - 1:  # contiguous: a view, no copy
            cols = slice(int(index[0]), int(index[-1]) + 1)
            g = self.gallery[cols]
        else:
            cols = torch.as_tensor(index, device=self.gallery.device)
            g = self.gallery.index_select(0, cols)
        if self.distance == 'cosine':
            g = g * self.inv_norm[cols, None]
        with cpu_threads(self.gemm_threads, g.device):
            scores = _matmul(probes, g)
        if self.distance == 'euclidean':
            scores += self.bias[cols]
        return scores


def _check_finite(x: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f'{name}: features contain NaN or Inf (or overflow when squared)')


def rank_true_matches(probe: torch.Tensor, gallery: torch.Tensor, pairs: Dict[str, np.ndarray],
                      distance: str, chunk_size: int, gallery_chunk_size: int,
                      cap: Optional[int] = None) -> np.ndarray:
    """1-based rank of every true match (in ``pairs`` order), by blocked counting.

    Uses the caller's ``torch.get_num_threads()`` for the matrix products and as many
    counting threads; every global it changes is restored before it returns.

    Args:
        probe (torch.Tensor): ``(P, D)`` probe features.
        gallery (torch.Tensor): ``(G, D)`` gallery features, same dtype and device.
        pairs (dict): the protocol's true-match pairs (``probe``, ``mated_pos``,
            ``num_matches``, ``first``, ``mated_idx``, ``other_idx``).
        distance (str): ``'euclidean'`` or ``'cosine'``.
        chunk_size (int): probes per block.
        gallery_chunk_size (int): gallery columns per matrix product.
        cap (int, optional): official mode's 1,000: a pair is followed only while fewer
            than ``cap`` items are known to rank before it; its rank then reads ``cap + 1``.

    Returns:
        np.ndarray: int64 ranks, one per pair.
    """
    threads = torch.get_num_threads()
    parts = threads if gallery.device.type == 'cpu' else 1
    with cpu_threads(1, gallery.device), contextlib.ExitStack() as stack:
        pool = None
        if parts > 1:
            pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(
                parts - 1, thread_name_prefix='lrfr-count'))
        return _rank(probe, gallery, pairs, distance, chunk_size, gallery_chunk_size, cap,
                     threads, parts, pool)


def _rank(probe: torch.Tensor, gallery: torch.Tensor, pairs: Dict[str, np.ndarray], distance: str,
          chunk_size: int, gallery_chunk_size: int, cap: Optional[int], gemm_threads: int,
          parts: int, pool: Optional[concurrent.futures.Executor]) -> np.ndarray:
    """Blocks of probes in decreasing order of their number of matches ``m``, so a
    block's rows form a few groups of equal ``m`` whose pairs are contiguous
    ``(rows, m)`` threshold matrices. With ``cap``, after distractor products 1, 2, 4,
    8, ... finished pairs leave the block, and probes left without pairs leave the
    matrix product."""
    num_pairs = pairs['probe'].shape[0]
    dev = gallery.device
    # Counting slices of `width` columns; matrix products of `gemm_width` (a multiple).
    width = min(gallery_chunk_size, _CPU_COUNT_WIDTH) if dev.type == 'cpu' else gallery_chunk_size
    gemm_width = gallery_chunk_size // width * width
    scorer = Scorer(probe, gallery, distance, width, gemm_threads)  # also validates the features
    match_rank = np.zeros(num_pairs, dtype=np.int64)
    if num_pairs == 0:  # nothing to rank: skip the matrix product entirely
        return match_rank
    mated_idx, other_idx = pairs['mated_idx'], pairs['other_idx']
    num_matches = pairs['num_matches']
    order = np.argsort(-num_matches, kind='stable')
    order = order[num_matches[order] > 0]  # probes without a match need no scores
    dim = probe.shape[1]
    # The widest band any item can need: the bound grows with the item's norm.
    max_norm = scorer.gallery_norms.upper.max()

    def slices(probes: torch.Tensor, index: np.ndarray, start: int) -> list:
        """One matrix product over ``index[start:start + gemm_width]``, cut in count slices."""
        cols = index[start:start + gemm_width]
        block = scorer(probes, cols)
        return [(block[:, c:c + width], cols[c:c + width]) for c in range(0, block.shape[1], width)]

    for c0 in range(0, order.shape[0], chunk_size):
        chunk = order[c0:c0 + chunk_size]
        pair_ids, rows, groups = _block_layout(chunk, num_matches[chunk], pairs['first'])
        probes = scorer.prepare_probes(probe.index_select(0, torch.as_tensor(chunk, device=dev)))
        pair_probe = pairs['probe'][pair_ids]
        mated_pos = pairs['mated_pos'][pair_ids]
        match_item = mated_idx[mated_pos]
        cands: List[Tuple[np.ndarray, np.ndarray]] = []

        # The mated region holds every true match, so its score tiles give the centres t.
        mated_tiles = [t for a in range(0, mated_idx.shape[0], gemm_width)
                       for t in slices(probes, mated_idx, a)]
        t = _gather_thresholds([s for s, _ in mated_tiles], rows, mated_pos, width)
        p_norm = scorer.probe_norms.upper[torch.as_tensor(pair_probe, device=dev)]
        m_norm = scorer.gallery_norms.upper[torch.as_tensor(match_item, device=dev)]
        delta = (_near_ties.score_bound(distance, dim, probe.dtype, p_norm, m_norm)
                 + _near_ties.score_bound(distance, dim, probe.dtype, p_norm, max_norm))
        lo, hi = _near_ties.band(t, delta)
        counter = _PairCounter(rows, groups, lo, hi, parts=parts, pool=pool)
        tile_of = torch.as_tensor(mated_pos // width, device=dev)
        own_col = torch.as_tensor(mated_pos % width, device=dev)
        active = np.arange(pair_ids.shape[0])  # block pairs still counted, in counter order
        for j, (scores, cols) in enumerate(mated_tiles):
            _record(cands, counter, scores, cols, active, own=(tile_of == j, own_col))
        del mated_tiles

        counts = np.zeros(pair_ids.shape[0])
        num_blocks = -(-other_idx.shape[0] // gemm_width)
        for b in range(num_blocks):
            for scores, cols in slices(probes, other_idx, b * gemm_width):
                _record(cands, counter, scores, cols, active)
            if cap is None or b + 1 == num_blocks or (b + 1) & b:  # check after 1, 2, 4, 8 ...
                continue
            now = counter.counts.cpu().numpy()
            done = now >= cap
            if done.sum() * 8 < done.size:  # too few finished to be worth a rebuild
                continue
            counts[active[done]] = now[done]
            keep = np.flatnonzero(~done)
            if keep.size == 0:
                active = keep
                break
            # Rebuild the block from the unfinished pairs: rows re-sorted by their number of
            # unfinished pairs; rows without any leave the matrix product.
            kept_rows = rows[keep]
            row_ids, local_row = np.unique(kept_rows, return_inverse=True)
            m_new = np.bincount(local_row)
            row_order = np.argsort(-m_new, kind='stable')
            pair_order = np.lexsort((np.arange(keep.size), np.argsort(row_order)[local_row]))
            keep = keep[pair_order]
            _, rows, groups = _block_layout(row_order, m_new[row_order], np.cumsum(m_new) - m_new)
            probes = probes.index_select(0, torch.as_tensor(row_ids[row_order], device=dev))
            counter = counter.subset(torch.as_tensor(keep, device=dev), rows, groups)
            active = active[keep]
        if active.size:
            counts[active] = counter.counts.cpu().numpy()

        # Near-ties of the pairs still followed: decided from the features alone.
        if cands:
            cand_pair = np.concatenate([c[0] for c in cands])
            cand_item = np.concatenate([c[1] for c in cands])
            keep = cand_item != match_item[cand_pair]
            if cap is not None:
                keep &= counts[cand_pair] < cap
            cand_pair, cand_item = cand_pair[keep], cand_item[keep]
            before = _near_ties.resolve(distance, probe, gallery, scorer.probe_norms,
                                        scorer.gallery_norms, pair_probe[cand_pair], cand_item,
                                        match_item[cand_pair])
            counts += np.bincount(cand_pair[before], minlength=counts.shape[0])
        rank = counts.astype(np.int64) + 1
        match_rank[pair_ids] = rank if cap is None else np.minimum(rank, cap + 1)
    return match_rank


def _record(cands: List[Tuple[np.ndarray, np.ndarray]], counter: '_PairCounter',
            scores: torch.Tensor, cols: np.ndarray, active: np.ndarray,
            own: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> None:
    """Count one tile and keep its near-tie candidates as (block pair, gallery item)."""
    found = counter.count(scores, own)
    if found is not None:
        local, col = found
        cands.append((active[local], cols[col]))


def _block_layout(chunk: np.ndarray, m: np.ndarray,
                  first: np.ndarray) -> Tuple[np.ndarray, np.ndarray, List[Group]]:
    """Pairs of a probe block, row-major, and its groups of rows with equal match count.

    Args:
        chunk (np.ndarray): the block's probes (or any ids indexing ``first``).
        m (np.ndarray): their number of pairs, non-increasing.
        first (np.ndarray): index of each probe's first pair in the pair list.

    Returns:
        tuple: pair ids (into the pair list), local row of each pair, and groups
        ``(r0, r1, m, p0)`` (rows ``r0 .. r1 - 1`` have ``m`` pairs each, from ``p0`` on).
    """
    rows = np.repeat(np.arange(chunk.shape[0]), m)
    pair_first = np.cumsum(m) - m
    pair_ids = first[chunk[rows]] + (np.arange(rows.shape[0]) - pair_first[rows])
    starts = np.flatnonzero(np.diff(m, prepend=-1))
    ends = np.append(starts[1:], chunk.shape[0])
    groups = [(int(r0), int(r1), int(m[r0]), int(pair_first[r0])) for r0, r1 in zip(starts, ends)]
    return pair_ids, rows, groups


def _split_groups(groups: Sequence[Group], parts: int) -> List[List[Group]]:
    """Cut row groups ``(r0, r1, m, p0)`` into ``parts`` shares of about equal pairs."""
    total = sum((r1 - r0) * m for r0, r1, m, _ in groups)
    if parts <= 1 or total < 2 * parts:
        return [list(groups)]
    shares: List[List[Group]] = [[] for _ in range(parts)]
    target, done, share = total / parts, 0, 0
    for r0, r1, m, p0 in groups:
        while r0 < r1:
            room = max(1, int(round((share + 1) * target - done)) // m)
            cut = r1 if share == parts - 1 else min(r1, r0 + room)
            shares[share].append((r0, cut, m, p0))
            done += (cut - r0) * m
            p0 += (cut - r0) * m
            r0 = cut
            if done >= (share + 1) * target - 0.5 * m and share < parts - 1:
                share += 1
    return [sh for sh in shares if sh]


def _gather_thresholds(tiles: Sequence[torch.Tensor], rows: np.ndarray, pos: np.ndarray,
                       width: int) -> torch.Tensor:
    """Score of each pair's own match, read from the score tile that holds it."""
    out = torch.empty(rows.shape[0], dtype=tiles[0].dtype, device=tiles[0].device)
    tile_of = pos // width
    for j, scores in enumerate(tiles):
        sel = np.flatnonzero(tile_of == j)
        if sel.size:
            dev = scores.device
            out[torch.as_tensor(sel, device=dev)] = scores[torch.as_tensor(rows[sel], device=dev),
                                                           torch.as_tensor(pos[sel] - j * width,
                                                                           device=dev)]
    return out


class _PairCounter:
    """Counts, for each (probe, true match) pair of a probe block, the items surely before it.

    Each pair has a band ``[lo, hi]`` around its match's score that holds every score
    the error bounds cannot order against it. A tile adds ``#{s < lo}`` to the pair's
    count (surely before) and reports the pairs with items in ``[lo, hi]`` (near-ties,
    besides the match itself): those items are extracted for the exact decision.

    Pairs are row-major, and rows come in groups ``(r0, r1, m, p0)`` of equal match
    count ``m``: the group's pairs ``p0 .. p0 + (r1 - r0) * m`` form a ``(rows, m)``
    threshold matrix compared with score rows ``r0 .. r1`` in broadcast operations.
    On CPU with ``parts > 1`` the groups are cut into ``parts`` shares of equal work,
    counted by the pool's threads and this one, each single-threaded (torch releases
    the GIL): a thread that waits for a busy core blocks instead of spinning in an
    OpenMP barrier.

    Args:
        rows (np.ndarray): local probe row of each pair.
        groups (Sequence[tuple]): ``(r0, r1, m, p0)`` per group of equal match count.
        lo, hi (torch.Tensor): each pair's band, in the scores' dtype.
        counts (torch.Tensor, optional): counts so far. Defaults to None (zeros).
        parts (int): threads sharing the comparisons. Defaults to 1.
        pool (Executor, optional): runs shares 1.. when ``parts > 1``.
    """

    def __init__(self, rows: np.ndarray, groups: Sequence[Group], lo: torch.Tensor,
                 hi: torch.Tensor, counts: Optional[torch.Tensor] = None, parts: int = 1,
                 pool: Optional[concurrent.futures.Executor] = None) -> None:
        dev = lo.device
        self.rows = torch.as_tensor(rows, device=dev)
        self.groups = groups
        self.parts, self.pool = parts, pool
        self.shares = _split_groups(groups, parts if pool is not None else 1)
        self._buffers: List[Optional[torch.Tensor]] = [None] * len(self.shares)
        self.lo, self.hi = lo, hi
        # float64 counts are exact far beyond any gallery size (2**53)
        self.counts = torch.zeros(rows.shape[0], dtype=torch.float64, device=dev) \
            if counts is None else counts
        # exact in float: a tile is far narrower than 2**24
        self._below = torch.empty(rows.shape[0], dtype=lo.dtype, device=dev)

    def subset(self, keep: torch.Tensor, rows: np.ndarray, groups: Sequence[Group]) -> '_PairCounter':
        """A counter for pairs ``keep`` (in their new order), laid out as ``rows``/``groups``."""
        return _PairCounter(rows, groups, self.lo[keep], self.hi[keep], self.counts[keep],
                            self.parts, self.pool)

    def count(self, scores: torch.Tensor,
              own: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
              ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """Add a tile's sure counts; return its near-ties as (pair, column) arrays, or None.

        ``own`` (1 where the tile holds the pair's match, and the match's column) keeps
        the match itself out of the near-ties."""
        if len(self.shares) == 1:
            found = self._compare(scores, own, 0)
        else:  # the other shares on pool threads, the first one here
            futures = [self.pool.submit(self._compare, scores, own, i)
                       for i in range(1, len(self.shares))]
            found = self._compare(scores, own, 0)
            for future in futures:
                found += future.result()
        self.counts += self._below
        if not found:
            return None
        return (torch.cat([f[0] for f in found]).cpu().numpy(),
                torch.cat([f[1] for f in found]).cpu().numpy())

    def _compare(self, scores: torch.Tensor, own: Optional[Tuple[torch.Tensor, torch.Tensor]],
                 share: int) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """One share of the groups: ``#{s < lo}`` per pair into ``_below``, and the
        (pair, column) positions of the scores in ``[lo, hi]`` other than the match."""
        width = scores.shape[1]
        found = []
        # A few matches per step keep the buffers no larger than the score tile (in cache;
        # at least 64k elements, so narrow tiles are not counted one match at a time).
        budget = max(scores.numel(), 1 << 16)
        for r0, r1, m, p0 in self.shares[share]:
            nr = r1 - r0
            rows = scores[r0:r1, None, :]
            pairs = slice(p0, p0 + nr * m)
            lo, hi = self.lo[pairs].view(nr, m), self.hi[pairs].view(nr, m)
            below = self._below[pairs].view(nr, m)
            step = max(1, budget // (nr * width))
            for k in range(0, m, step):
                ks = min(step, m - k)
                n = nr * ks * width
                buffer = self._buffers[share]
                if buffer is None or buffer.shape[1] < n:
                    buffer = self._buffers[share] = torch.empty(2, n, dtype=scores.dtype,
                                                                device=scores.device)
                # comparisons go to float buffers (a bool sum would be cast to int64)
                is_below = torch.lt(rows, lo[:, k:k + ks, None], out=buffer[0, :n].view(nr, ks, width))
                in_band = torch.le(rows, hi[:, k:k + ks, None], out=buffer[1, :n].view(nr, ks, width))
                low = is_below.sum(2)
                below[:, k:k + ks] = low
                band = (in_band.sum(2) - low).flatten()  # items in [lo, hi]
                ids = (p0 + torch.arange(nr, device=scores.device)[:, None] * m
                       + torch.arange(k, k + ks, device=scores.device)).flatten()
                if own is not None:  # the match itself is in its band
                    band -= own[0][ids].to(band.dtype)
                sel = torch.nonzero(band > 0).flatten()
                if sel.numel() == 0:
                    continue
                # Near-ties are sparse: only the rows holding some are read again (the
                # band indicator is le minus lt, formed on those rows or, when they are
                # most rows, in place).
                in_band = in_band.view(nr * ks, width)
                is_below = is_below.view(nr * ks, width)
                if 2 * sel.numel() > band.numel():
                    diff = in_band.sub_(is_below).index_select(0, sel)
                else:
                    diff = in_band.index_select(0, sel).sub_(is_below.index_select(0, sel))
                sel_ids = ids[sel]
                if own is not None:
                    mine = torch.nonzero(own[0][sel_ids]).flatten()
                    diff[mine, own[1][sel_ids[mine]]] = 0
                r, col = torch.nonzero(diff, as_tuple=True)
                found.append((sel_ids[r], col))
        return found

