"""1:N face identification (CMC, mAP, PR) by counting, as in the official TinyFace evaluation.

Reference: the TinyFace MATLAB evaluation (``test_face_identification.m`` with the
Market-1501 ``compute_AP.m``) used by Cheng, Zhu & Gong, "Low-Resolution Face
Recognition", ACCV 2018. For each probe the official script sorts the whole gallery
by Euclidean distance and walks the ranked list. Here the rank of each true match is
counted instead of sorted::

    rank(m) = 1 + #{j : s_j < s_m} + #{j < m : s_j == s_m}

(gallery order breaks ties, as MATLAB's stable ``sort`` does), where ``s`` is the
probe's score row (lower is better). The counts come from one matrix product per
block of probes x gallery columns, so memory is bounded by the block size and no
gallery row is ever sorted. The ranks of a probe's true matches determine its CMC
row, both average precisions and its precision-recall curve exactly. In official mode,
where nothing beyond rank 1,000 counts, a match stops being followed once 1,000 items
are known to rank before it, and a probe with no such match left stops being scored.

See ``docs/evaluation.md`` for the protocol, the tie rule and the 1,000-rank cut-off.
"""
import concurrent.futures
import contextlib
import math
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from lrfr.structures import DISTRACTOR_LABEL
from ._tensor import ArrayLike, as_features, as_labels

#: The official ``compute_AP.m`` keeps a 1,000-entry CMC and ignores true matches ranked lower.
OFFICIAL_MAX_RANK = 1000
DISTANCES = ('euclidean', 'cosine')
AP_MODES = ('official', 'exact')
NO_MATCH_POLICIES = ('zero', 'exclude')

# Block sizes (probes, gallery columns per matrix product). On a CPU each product is
# counted in 2048-column slices, a (256 x 2048) float32 slice (2 MiB) staying in cache;
# with several threads the products are wider (16384 columns: fewer thread
# synchronisations, which cost dearly when cores are shared). A GPU counts whole blocks.
_CPU_BLOCK = (256, 2048)
_CPU_BLOCK_THREADED = (256, 16384)
_GPU_BLOCK = (2048, 32768)
_CPU_COUNT_WIDTH = 2048


def evaluate_identification(probe_feats: ArrayLike,
                            probe_labels: ArrayLike,
                            gallery_feats: ArrayLike,
                            gallery_labels: ArrayLike,
                            distance: str = 'euclidean',
                            ap_mode: str = 'official',
                            ranks: Sequence[int] = (1, 5, 10, 20, 50),
                            chunk_size: Optional[int] = None,
                            gallery_chunk_size: Optional[int] = None,
                            no_match: str = 'zero',
                            device: Optional[Union[str, torch.device]] = None) -> Dict[str, Any]:
    """Closed-set 1:N identification of probes against a gallery with distractors.

    Ranking: ascending Euclidean distance (``distance='euclidean'``, the official
    protocol), computed as ``||g||^2 - 2 p.g`` (``||p||^2`` is constant along a probe's
    row, so the order is the distance order), or descending cosine similarity
    (``'cosine'``). Ties keep gallery order (MATLAB's stable ``sort``).

    ``ap_mode='official'`` reproduces ``compute_AP.m`` as shipped with TinyFace: for
    the k-th true match at rank ``r_k`` among ``n`` true matches,
    ``AP = sum_k (1/n) * (p_{k-1} + k / r_k) / 2`` with ``p_{k-1} = (k-1)/(r_k-1)``
    the precision just before the hit (1 when ``r_1 = 1``): the trapezoid rule with
    precision starting at 1. Only matches ranked within the first 1,000 count (CMC
    vector of 1,000 entries); matches ranked lower add nothing to AP but still count
    in ``n``. ``ap_mode='exact'``: usual non-interpolated ``AP = (1/n) sum_k k / r_k``
    over all matches and a CMC as long as the gallery.

    Args:
        probe_feats (np.ndarray | torch.Tensor): ``(P, D)`` probe features.
        probe_labels (np.ndarray | torch.Tensor): ``(P,)`` integer identities; a probe
            may not carry ``DISTRACTOR_LABEL``.
        gallery_feats (np.ndarray | torch.Tensor): ``(G, D)`` gallery features, in the
            protocol's order (it breaks ties).
        gallery_labels (np.ndarray | torch.Tensor): ``(G,)`` integer identities;
            ``DISTRACTOR_LABEL`` or any label absent from the probes marks a distractor.
        distance (str): ``'euclidean'`` or ``'cosine'``. Defaults to ``'euclidean'``.
        ap_mode (str): ``'official'`` or ``'exact'``. Defaults to ``'official'``.
        ranks (Sequence[int]): CMC ranks reported as ``rank{k}``. Defaults to
            ``(1, 5, 10, 20, 50)``.
        chunk_size (int, optional): probes per block. Defaults to None (256 on CPU,
            2048 on GPU).
        gallery_chunk_size (int, optional): gallery columns per matrix product.
            Defaults to None (on CPU 2048 with one intra-op thread, else 16384; 32768 on
            GPU). Peak extra memory is about
            ``chunk_size * (num_mated_gallery + gallery_chunk_size)`` scores.
        no_match (str): probes whose identity has no gallery image (the official script
            gives them an all-zero CMC row and a NaN AP): ``'zero'`` counts them with
            CMC 0 and AP 0; ``'exclude'`` drops them from every mean. Defaults to
            ``'zero'``.
        device (str | torch.device, optional): where to compute. Defaults to None (the
            gallery's device; numpy inputs compute on the CPU).

    Returns:
        dict: ``rank{k}`` and ``mAP`` (floats in [0, 1]); ``cmc`` (float64 array, entry
        ``i`` = fraction of probes with a true match at rank ``<= i + 1``); ``ap``
        (per-probe AP, NaN-free); ``num_matches`` (true matches per probe);
        ``first_match_rank`` (per probe, 0 when it has none or, in official mode, none
        within 1,000); ``match_probe`` and ``match_rank`` (one entry per true match,
        sorted by probe then rank, 1-based; in official mode a match ranked beyond
        1,000 is not followed further and reads 1,001); ``valid`` (probes in the
        means); ``num_probes``, ``num_gallery``, ``num_probes_without_match``,
        ``distance``, ``ap_mode``, ``max_rank`` (``len(cmc)``).
    """
    if distance not in DISTANCES:
        raise ValueError(f'distance: expected one of {DISTANCES}, got {distance!r}')
    if ap_mode not in AP_MODES:
        raise ValueError(f'ap_mode: expected one of {AP_MODES}, got {ap_mode!r}')
    if no_match not in NO_MATCH_POLICIES:
        raise ValueError(f'no_match: expected one of {NO_MATCH_POLICIES}, got {no_match!r}')
    ranks = _check_ranks(ranks, ap_mode)

    gallery = as_features(gallery_feats, 'gallery_feats', device, check_finite=False)
    probe = as_features(probe_feats, 'probe_feats', gallery.device, check_finite=False)
    if probe.shape[1] != gallery.shape[1]:
        raise ValueError(f'probe_feats has dim {probe.shape[1]} but gallery_feats has dim '
                         f'{gallery.shape[1]}')
    if probe.shape[0] == 0 or gallery.shape[0] == 0:
        raise ValueError(f'need at least one probe and one gallery image, got '
                         f'{probe.shape[0]} probes and {gallery.shape[0]} gallery images')
    dtype = torch.promote_types(probe.dtype, gallery.dtype)
    probe, gallery = probe.to(dtype), gallery.to(dtype)
    probe_lbl = as_labels(probe_labels, 'probe_labels', probe.shape[0])
    gallery_lbl = as_labels(gallery_labels, 'gallery_labels', gallery.shape[0])
    if (probe_lbl == DISTRACTOR_LABEL).any():
        raise ValueError(f'probe_labels: probes must be labelled; got the distractor label '
                         f'{DISTRACTOR_LABEL} for {int((probe_lbl == DISTRACTOR_LABEL).sum())} probe(s)')

    if gallery.device.type == 'cuda':
        default_block = _GPU_BLOCK
    else:
        default_block = _CPU_BLOCK_THREADED if torch.get_num_threads() > 1 else _CPU_BLOCK
    chunk_size = _check_block(chunk_size, default_block[0], 'chunk_size')
    gallery_chunk_size = _check_block(gallery_chunk_size, default_block[1], 'gallery_chunk_size')

    pairs = _true_match_pairs(probe_lbl, gallery_lbl)
    threads = torch.get_num_threads()
    with _cpu_threads(1, gallery.device):  # every thread for the GEMMs only (see _cpu_threads)
        match_rank = _rank_true_matches(probe, gallery, pairs, distance, chunk_size,
                                        gallery_chunk_size,
                                        OFFICIAL_MAX_RANK if ap_mode == 'official' else None,
                                        gemm_threads=threads)
    return _summarise(match_rank, pairs['probe'], pairs['num_matches'], gallery.shape[0],
                      distance, ap_mode, ranks, no_match)


def precision_recall_curve(result: Dict[str, Any],
                           max_rank: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Mean precision and recall after each rank (the PR curve of the paper's metrics).

    For the probes in the means (``result['valid']``) that have true matches,
    ``precision(n) = mean_p hits_p(n) / n`` and ``recall(n) = mean_p hits_p(n) / n_p``,
    where ``hits_p(n)`` counts probe p's true matches within rank n (in official mode
    only those within the 1,000-rank cut-off, as its AP does).

    Args:
        result (dict): the output of :func:`evaluate_identification`.
        max_rank (int, optional): last rank of the curve. Defaults to None
            (``result['max_rank']``).

    Returns:
        dict: ``rank`` (1..max_rank), ``precision`` and ``recall`` (float64 arrays).
    """
    n = int(result['max_rank'] if max_rank is None else max_rank)
    if n < 1:
        raise ValueError(f'max_rank: expected a positive rank, got {max_rank}')
    num_matches = np.asarray(result['num_matches'])
    probes = np.flatnonzero(np.asarray(result['valid']) & (num_matches > 0))
    rank = np.arange(1, n + 1)
    if probes.size == 0:
        return dict(rank=rank, precision=np.zeros(n), recall=np.zeros(n))
    match_probe = np.asarray(result['match_probe'])
    match_rank = np.asarray(result['match_rank'])
    cut = n if result['ap_mode'] == 'exact' else min(n, OFFICIAL_MAX_RANK)
    keep = np.isin(match_probe, probes) & (match_rank <= cut)
    hist = np.bincount(match_rank[keep] - 1, minlength=n)[:n]
    recall_hist = np.bincount(match_rank[keep] - 1,
                              weights=1.0 / num_matches[match_probe[keep]], minlength=n)[:n]
    precision = np.cumsum(hist) / (rank * probes.size)
    recall = np.cumsum(recall_hist) / probes.size
    return dict(rank=rank, precision=precision, recall=recall)


# ----------------------------------------------------------------------------------------
# Internals
# ----------------------------------------------------------------------------------------
def _check_ranks(ranks: Sequence[int], ap_mode: str) -> Tuple[int, ...]:
    try:
        ranks = tuple(int(k) for k in ranks)
    except (TypeError, ValueError):
        raise TypeError(f'ranks: expected a sequence of positive ints, got {ranks!r}') from None
    if not ranks or min(ranks) < 1:
        raise ValueError(f'ranks: expected positive ranks, got {ranks}')
    if ap_mode == 'official' and max(ranks) > OFFICIAL_MAX_RANK:
        raise ValueError(f'ranks: the official CMC stops at rank {OFFICIAL_MAX_RANK}, got {ranks}; '
                         "use ap_mode='exact' for deeper ranks")
    return ranks


def _check_block(value: Optional[int], default: int, name: str) -> int:
    if value is None:
        return default
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name}: expected a positive int, got {value!r}')
    return int(value)


def _true_match_pairs(probe_lbl: np.ndarray, gallery_lbl: np.ndarray) -> Dict[str, np.ndarray]:
    """Every (probe, true gallery match) pair, sorted by probe then gallery order.

    The gallery splits into two regions, each kept in gallery order: *mated* items
    (a label some probe carries) and the others (distractors). Positions are given
    in region coordinates, with the region-wise tie split of each pair: ``mated_pos``
    (the match itself) and ``other_pos`` (how many distractors precede the match).
    """
    num_probes = probe_lbl.shape[0]
    mated = (gallery_lbl != DISTRACTOR_LABEL) & np.isin(gallery_lbl, probe_lbl)
    mated_idx = np.flatnonzero(mated)
    other_idx = np.flatnonzero(~mated)
    order = np.argsort(gallery_lbl[mated_idx], kind='stable')
    sorted_lbl = gallery_lbl[mated_idx][order]
    lo = np.searchsorted(sorted_lbl, probe_lbl, side='left')
    num_matches = np.searchsorted(sorted_lbl, probe_lbl, side='right') - lo
    first = np.cumsum(num_matches) - num_matches  # first pair of each probe
    total = int(num_matches.sum())
    within = np.arange(total) - np.repeat(first, num_matches)  # slot of a pair in its probe
    mated_pos = order[np.repeat(lo, num_matches) + within]
    return dict(
        probe=np.repeat(np.arange(num_probes), num_matches),
        mated_pos=mated_pos,
        other_pos=np.searchsorted(other_idx, mated_idx[mated_pos]),
        num_matches=num_matches,
        first=first,
        mated_idx=mated_idx,
        other_idx=other_idx)


class _Scorer:
    """Score blocks ``s = ||g||^2 - 2 p.g`` (Euclidean) or ``-cos(p, g)``: lower is better.

    Probe rows are pre-scaled once (``-2 p`` is exact; ``-p/||p||`` is shared by every
    block), and each gallery item's ``||g||^2`` (or ``1/||g||``) is computed once, so an
    item scores the same way in every block it appears in.

    Args:
        gallery (torch.Tensor): ``(G, D)`` gallery features.
        distance (str): ``'euclidean'`` or ``'cosine'``.
        block (int): rows per step when computing the norms (bounds the temporary).
        gemm_threads (int): CPU threads for the matrix products. Defaults to 1.
    """

    def __init__(self, gallery: torch.Tensor, distance: str, block: int,
                 gemm_threads: int = 1) -> None:
        self.gallery = gallery
        self.distance = distance
        self.gemm_threads = gemm_threads
        sq = torch.empty(gallery.shape[0], dtype=gallery.dtype, device=gallery.device)
        for a in range(0, gallery.shape[0], block):
            g = gallery[a:a + block]
            sq[a:a + block] = (g * g).sum(1)
        # NaN/Inf anywhere in a row (or an overflowing norm) shows in its squared norm:
        # one check on G numbers instead of a pass over G x D.
        _check_finite(sq, 'gallery_feats')
        if distance == 'euclidean':
            self.bias = sq
        else:  # same eps as F.normalize
            self.inv_norm = 1.0 / sq.sqrt().clamp_min(1e-12)

    def prepare_probes(self, probe: torch.Tensor) -> torch.Tensor:
        _check_finite((probe * probe).sum(1), 'probe_feats')
        if self.distance == 'euclidean':
            return probe * -2.0
        return -F.normalize(probe, dim=1)

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
        with _cpu_threads(self.gemm_threads, g.device):
            scores = probes @ g.T
        if self.distance == 'euclidean':
            scores += self.bias[cols]
        return scores


@contextlib.contextmanager
def _cpu_threads(threads: int, device: torch.device) -> Iterator[None]:
    """Run a block with ``threads`` intra-op CPU threads, then restore the previous count.

    The evaluation runs its many small memory-bound operations (norms, bias, comparisons,
    sums) with one intra-op thread (the comparisons shared by Python threads, see
    :class:`_PairCounter`) and gives every thread back to the matrix products only: when
    the cores are shared with other work (data loader workers, other jobs) each small
    operation's OpenMP barrier can wait a whole scheduler time slice for a descheduled
    thread (measured: 10-20x slower overall on a busy 2-core machine). No effect on GPU.
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


def _check_finite(x: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f'{name}: features contain NaN or Inf (or overflow when squared)')


def _rank_true_matches(probe: torch.Tensor, gallery: torch.Tensor, pairs: Dict[str, np.ndarray],
                       distance: str, chunk_size: int, gallery_chunk_size: int,
                       cap: Optional[int] = None, gemm_threads: int = 1) -> np.ndarray:
    """1-based rank of every true match (in ``pairs`` order), by blocked counting.

    Probes are processed in decreasing order of their number of matches ``m``, so a
    block's rows form a few groups of equal ``m`` whose pairs are contiguous
    ``(rows, m)`` threshold matrices: views only, no gathered copies, few operations.

    With ``cap`` (official mode: 1,000) a pair is only followed while its count stays
    below ``cap``: from time to time (after distractor products 1, 2, 4, 8, ...) finished
    pairs leave the block, and probes left without pairs leave the matrix product.
    Their rank is then reported as ``cap + 1``.
    """
    num_pairs = pairs['probe'].shape[0]
    dev = gallery.device
    # Counting slices of `width` columns; matrix products of `gemm_width` (a multiple).
    width = min(gallery_chunk_size, _CPU_COUNT_WIDTH) if dev.type == 'cpu' else gallery_chunk_size
    gemm_width = gallery_chunk_size // width * width
    scorer = _Scorer(gallery, distance, width, gemm_threads)  # also validates the features
    match_rank = np.zeros(num_pairs, dtype=np.int64)
    if num_pairs == 0:  # nothing to rank: skip the matrix product entirely
        return match_rank
    mated_idx, other_idx = pairs['mated_idx'], pairs['other_idx']
    num_matches = pairs['num_matches']
    order = np.argsort(-num_matches, kind='stable')
    order = order[num_matches[order] > 0]  # probes without a match need no scores

    def slices(probes: torch.Tensor, index: np.ndarray, start: int) -> list:
        """One matrix product over ``index[start:start + gemm_width]``, cut in count slices."""
        block = scorer(probes, index[start:start + gemm_width])
        return [block[:, c:c + width] for c in range(0, block.shape[1], width)]

    for c0 in range(0, order.shape[0], chunk_size):
        chunk = order[c0:c0 + chunk_size]
        pair_ids, rows, groups = _block_layout(chunk, num_matches[chunk], pairs['first'])
        probes = scorer.prepare_probes(probe.index_select(0, torch.as_tensor(chunk, device=dev)))

        # The mated region holds every true match, so its score tiles give the thresholds,
        # read from the very tiles they are compared with (bit-for-bit consistent).
        mated_pos = pairs['mated_pos'][pair_ids]
        mated_tiles = [t for a in range(0, mated_idx.shape[0], gemm_width)
                       for t in slices(probes, mated_idx, a)]
        counter = _PairCounter(rows, groups, _gather_thresholds(mated_tiles, rows, mated_pos, width),
                               parts=gemm_threads)
        region = counter.region(mated_pos, width)
        for j, scores in enumerate(mated_tiles):
            counter.count(scores, j, region)
        del mated_tiles

        other_pos = pairs['other_pos'][pair_ids]
        region = counter.region(other_pos, width)
        counts = np.zeros(pair_ids.shape[0])
        active = np.arange(pair_ids.shape[0])  # block pairs still counted, in counter order
        num_blocks = -(-other_idx.shape[0] // gemm_width)
        for b in range(num_blocks):
            for k, scores in enumerate(slices(probes, other_idx, b * gemm_width)):
                counter.count(scores, b * (gemm_width // width) + k, region)
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
            _, rows, groups = _block_layout(row_order, m_new[row_order],
                                            np.cumsum(m_new) - m_new)
            probes = probes.index_select(0, torch.as_tensor(row_ids[row_order], device=dev))
            counter = counter.subset(torch.as_tensor(keep, device=dev), rows, groups)
            active = active[keep]
            region = counter.region(other_pos[active], width)
        if active.size:
            counts[active] = counter.counts.cpu().numpy()
        rank = counts.astype(np.int64) + 1
        match_rank[pair_ids] = rank if cap is None else np.minimum(rank, cap + 1)
    return match_rank


def _block_layout(chunk: np.ndarray, m: np.ndarray,
                  first: np.ndarray) -> Tuple[np.ndarray, np.ndarray, list]:
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


def _split_groups(groups: Sequence[Tuple[int, int, int, int]],
                  parts: int) -> List[List[Tuple[int, int, int, int]]]:
    """Cut row groups ``(r0, r1, m, p0)`` into ``parts`` shares of about equal pairs."""
    total = sum((r1 - r0) * m for r0, r1, m, _ in groups)
    if parts <= 1 or total < 2 * parts:
        return [list(groups)]
    shares: List[List[Tuple[int, int, int, int]]] = [[] for _ in range(parts)]
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


_POOL: Optional[concurrent.futures.ThreadPoolExecutor] = None


def _thread_pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    """A process-wide pool for the counting shares (created on first use)."""
    global _POOL
    if _POOL is None or _POOL._max_workers < workers:
        _POOL = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix='lrfr-count')
    return _POOL


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
    """Counts, for each (probe, true match) pair of a probe block, the items that rank before it.

    A gallery region (kept in gallery order) is scanned in tiles of ``width`` columns.
    Each pair has a split position ``pos`` in the region: items before it rank first
    when they score ``<=`` the match (stable-sort tie rule), items from it on when they
    score ``<``. A tile entirely before the split compares with ``nextafter(t, +inf)``
    (``s < nextafter(t) <=> s <= t``), a tile from the split on with ``t``, so a tile
    costs one comparison per pair and element; only the tile that straddles the split
    adds the exact ties in front of it. Where ``nextafter`` cannot help (``t``
    infinite, or a flush-to-zero mode swallowing the subnormal step), the pair falls
    back to the exact tie count in every tile before its split.

    Pairs are row-major, and rows come in groups ``(r0, r1, m, p0)`` of equal match
    count ``m``: the group's pairs ``p0 .. p0 + (r1 - r0) * m`` form a ``(rows, m)``
    threshold matrix compared with score rows ``r0 .. r1`` in broadcast operations.

    On CPU with ``parts > 1`` the groups are cut into ``parts`` shares of equal work,
    counted by as many Python threads, each single-threaded (torch releases the GIL): a
    thread that waits for a busy core blocks instead of spinning in an OpenMP barrier.

    Args:
        rows (np.ndarray): local probe row of each pair.
        groups (Sequence[tuple]): ``(r0, r1, m, p0)`` per group of equal match count.
        thresholds (torch.Tensor): each pair's own match score.
        counts (torch.Tensor, optional): counts so far. Defaults to None (zeros).
        parts (int): threads sharing the comparisons. Defaults to 1.
    """

    def __init__(self, rows: np.ndarray, groups: Sequence[Tuple[int, int, int, int]],
                 thresholds: torch.Tensor, counts: Optional[torch.Tensor] = None,
                 parts: int = 1) -> None:
        dev = thresholds.device
        self.rows = torch.as_tensor(rows, device=dev)
        self.groups = groups
        self.parts = parts
        self.shares = _split_groups(groups, parts if dev.type == 'cpu' else 1)
        self._buffers: List[Optional[torch.Tensor]] = [None] * len(self.shares)
        self.t = thresholds
        self.t_next = torch.nextafter(thresholds, thresholds.new_tensor(math.inf))
        bad = ~(self.t_next > thresholds)
        self.bad = np.flatnonzero(bad.cpu().numpy())  # one host sync per probe block
        self.bad_mask = bad if self.bad.size else None
        # float64 counts are exact far beyond any gallery size (2**53)
        self.counts = torch.zeros(rows.shape[0], dtype=torch.float64, device=dev) \
            if counts is None else counts
        self._tile_counts = torch.empty(rows.shape[0], dtype=thresholds.dtype, device=dev)

    def subset(self, keep: torch.Tensor, rows: np.ndarray,
               groups: Sequence[Tuple[int, int, int, int]]) -> '_PairCounter':
        """A counter for pairs ``keep`` (in their new order), laid out as ``rows``/``groups``."""
        return _PairCounter(rows, groups, self.t[keep], self.counts[keep], self.parts)

    def region(self, pos: np.ndarray, width: int) -> Dict[str, Any]:
        """Per-region state: split tile of each pair and, per tile, the pairs needing exact ties."""
        tile_of = pos // width
        need = np.flatnonzero(pos % width != 0)  # split strictly inside a tile
        eq_pairs = {int(j): need[tile_of[need] == j] for j in np.unique(tile_of[need])}
        return dict(pos=pos, width=width, tile_of=tile_of, eq_pairs=eq_pairs,
                    tile_of_t=torch.as_tensor(tile_of, device=self.t.device))

    def count(self, scores: torch.Tensor, j: int, region: Dict[str, Any]) -> None:
        """Add the counts of gallery tile ``j`` of ``region``. ``scores`` (rows x tile
        columns) is overwritten: the last comparison of each row runs in place."""
        self._count_ties(scores, j, region)  # reads the scores: before they are overwritten
        before = region['tile_of_t'] > j  # the whole tile precedes the split: '<='
        if self.bad_mask is not None:
            before &= ~self.bad_mask
        thr = torch.where(before, self.t_next, self.t)
        if len(self.shares) == 1:
            self._compare(scores, thr, 0)
        else:  # the other shares on pool threads, the first one here
            pool = _thread_pool(len(self.shares) - 1)
            futures = [pool.submit(self._compare, scores, thr, i)
                       for i in range(1, len(self.shares))]
            self._compare(scores, thr, 0)
            for future in futures:
                future.result()
        self.counts += self._tile_counts

    def _compare(self, scores: torch.Tensor, thr: torch.Tensor, share: int) -> None:
        """Count one share of the groups into ``_tile_counts`` (disjoint rows and pairs)."""
        width = scores.shape[1]
        tile_counts = self._tile_counts  # exact in float: a tile is far narrower than 2**24
        for r0, r1, m, p0 in self.shares[share]:
            nr = r1 - r0
            thr_g = thr[p0:p0 + nr * m].view(nr, m)
            out_g = tile_counts[p0:p0 + nr * m].view(nr, m)
            # All but the last match of each row: compare into a float buffer and sum it
            # (a bool result would be cast to int64 by the reduction). A few matches per
            # step keep the buffer no larger than the score tile (it stays in cache).
            step = max(1, scores.shape[0] // nr)
            for k in range(0, m - 1, step):
                ks = min(step, m - 1 - k)
                n = nr * ks * width
                buffer = self._buffers[share]
                if buffer is None or buffer.numel() < n:
                    buffer = self._buffers[share] = torch.empty(n, dtype=scores.dtype,
                                                                device=scores.device)
                hit = torch.lt(scores[r0:r1, None, :], thr_g[:, k:k + ks, None],
                               out=buffer[:n].view(nr, ks, width))
                out_g[:, k:k + ks] = hit.sum(2)
            # The last one in place: half the memory traffic of a separate buffer.
            out_g[:, m - 1] = scores[r0:r1].lt_(thr_g[:, m - 1:]).sum(1)

    def _count_ties(self, scores: torch.Tensor, j: int, region: Dict[str, Any]) -> None:
        """Exact ties ahead of the split: in the straddled tile, and in every earlier tile
        for pairs without a usable nextafter threshold."""
        eq = region['eq_pairs'].get(j)
        if self.bad.size:
            extra = self.bad[region['tile_of'][self.bad] > j]
            eq = extra if eq is None else np.union1d(eq, extra)
        if eq is None or eq.size == 0:
            return
        dev = scores.device
        eq_t = torch.as_tensor(eq, device=dev)
        limit = np.minimum(region['pos'][eq] - j * region['width'], scores.shape[1])
        vals = scores.index_select(0, self.rows[eq_t])
        ties = (vals == self.t[eq_t, None]) & (
            torch.arange(scores.shape[1], device=dev) < torch.as_tensor(limit, device=dev)[:, None])
        self.counts.index_add_(0, eq_t, ties.sum(1, dtype=self.counts.dtype))


def _summarise(match_rank: np.ndarray, match_probe: np.ndarray, num_matches: np.ndarray,
               num_gallery: int, distance: str, ap_mode: str, ranks: Tuple[int, ...],
               no_match: str) -> Dict[str, Any]:
    """CMC, per-probe AP and mAP from the ranks of the true matches."""
    num_probes = num_matches.shape[0]
    # Sort each probe's matches by rank: k-th hit at rank r_k (pairs are probe-sorted).
    order = np.lexsort((match_rank, match_probe))
    match_rank, match_probe = match_rank[order], match_probe[order]
    first = np.cumsum(num_matches) - num_matches
    k = (np.arange(match_rank.shape[0]) - first[match_probe] + 1).astype(np.float64)
    n = num_matches[match_probe].astype(np.float64)
    r = match_rank.astype(np.float64)

    if ap_mode == 'official':
        # compute_AP.m, per hit: ap += (recall - old_recall) * (old_precision + precision) / 2,
        # old_precision = hits-so-far / ranks-so-far before this hit (1 at rank 1); hits beyond
        # rank 1,000 are not counted (recall stops growing: zero area).
        max_rank = OFFICIAL_MAX_RANK
        kept = match_rank <= max_rank
        old_precision = np.where(r > 1, (k - 1) / np.maximum(r - 1, 1), 1.0)
        term = (k / n - (k - 1) / n) * ((old_precision + k / r) / 2)
        term = np.where(kept, term, 0.0)
    else:
        max_rank = num_gallery
        kept = np.ones_like(match_rank, dtype=bool)
        term = (k / r) / n
    ap = np.bincount(match_probe, weights=term, minlength=num_probes)

    first_rank = np.zeros(num_probes, dtype=np.int64)
    is_first = (k == 1) & kept
    first_rank[match_probe[is_first]] = match_rank[is_first]

    has_match = num_matches > 0
    num_without = int((~has_match).sum())
    valid = has_match if no_match == 'exclude' else np.ones(num_probes, dtype=bool)
    num_valid = int(valid.sum())
    if num_without:
        warnings.warn(f'{num_without} of {num_probes} probes have no true match in the gallery; '
                      f"no_match={no_match!r}: " +
                      ('counted with CMC 0 and AP 0' if no_match == 'zero' else 'left out of the means'),
                      stacklevel=3)
    hits = first_rank[valid & (first_rank > 0)]
    cmc = np.cumsum(np.bincount(hits - 1, minlength=max_rank)[:max_rank]) / max(num_valid, 1)
    mean_ap = float(ap[valid].sum() / num_valid) if num_valid else 0.0

    result: Dict[str, Any] = {f'rank{k_}': float(cmc[min(k_, max_rank) - 1]) for k_ in ranks}
    result.update(
        mAP=mean_ap, cmc=cmc, ap=ap, num_matches=num_matches, first_match_rank=first_rank,
        match_probe=match_probe, match_rank=match_rank, valid=valid, num_probes=num_probes,
        num_gallery=num_gallery, num_probes_without_match=num_without, distance=distance,
        ap_mode=ap_mode, max_rank=max_rank)
    return result
