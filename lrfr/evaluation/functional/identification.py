"""1:N face identification (CMC, mAP, PR) by counting, as in the official TinyFace evaluation.

Reference: the TinyFace MATLAB evaluation (``test_face_identification.m`` with the
Market-1501 ``compute_AP.m``) used by Cheng, Zhu & Gong, "Low-Resolution Face
Recognition", ACCV 2018. For each probe the official script sorts the whole gallery
by Euclidean distance and walks the ranked list. Here the rank of each true match is
counted instead of sorted::

    rank(m) = 1 + #{j : s_j < s_m} + #{j < m : s_j == s_m}

(gallery order breaks ties, as MATLAB's stable ``sort`` does), where ``s`` is the
probe's score row (lower is better), each score a function of the two feature vectors
only (``._near_ties``: identical rows tie, whatever the BLAS). The counts come from one
matrix product per block of probes x gallery columns (the private
``._identification_engine``): memory is bounded by the block size, no gallery row is
ever sorted, and pairs too close for the product's proven error bound are decided
exactly. The ranks of a probe's true matches determine its CMC row, both average
precisions and its precision-recall curve exactly. In official mode, where nothing
beyond rank 1,000 counts, a match stops being followed once 1,000 items are known to
rank before it, and a probe with no such match left stops being scored.

See ``docs/evaluation.md`` for the protocol, the tie rule and the 1,000-rank cut-off.
"""
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from lrfr.structures import DISTRACTOR_LABEL
from . import _identification_engine as engine
from ._tensor import ArrayLike, as_features, as_labels

#: The official ``compute_AP.m`` keeps a 1,000-entry CMC and ignores true matches ranked lower.
OFFICIAL_MAX_RANK = 1000
DISTANCES = ('euclidean', 'cosine')
AP_MODES = ('official', 'exact')
NO_MATCH_POLICIES = ('zero', 'exclude')


def check_identification_options(distance: str, ap_mode: str, no_match: str,
                                 ranks: Sequence[int], owner: str = '') -> Tuple[int, ...]:
    """Check the identification options (the one definition the functional API and
    ``IdentificationMetric`` share) and return the ranks as a tuple of ints.

    Args:
        distance (str): one of ``DISTANCES``.
        ap_mode (str): one of ``AP_MODES``.
        no_match (str): one of ``NO_MATCH_POLICIES``.
        ranks (Sequence[int]): positive CMC ranks (at most 1,000 in official mode).
        owner (str): prefix of the error messages (e.g. ``'IdentificationMetric: '``).

    Returns:
        tuple: the ranks as ints.
    """
    for name, value, allowed in (('distance', distance, DISTANCES), ('ap_mode', ap_mode, AP_MODES),
                                 ('no_match', no_match, NO_MATCH_POLICIES)):
        if value not in allowed:
            raise ValueError(f'{owner}{name}: expected one of {allowed}, got {value!r}')
    try:
        ranks = tuple(int(k) for k in ranks)
    except (TypeError, ValueError):
        raise TypeError(f'{owner}ranks: expected a sequence of positive ints, got {ranks!r}') from None
    if not ranks or min(ranks) < 1:
        raise ValueError(f'{owner}ranks: expected positive ranks, got {ranks}')
    if ap_mode == 'official' and max(ranks) > OFFICIAL_MAX_RANK:
        raise ValueError(f'{owner}ranks: the official CMC stops at rank {OFFICIAL_MAX_RANK}, got '
                         f"{ranks}; use ap_mode='exact' for deeper ranks")
    return ranks


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
    ranks = check_identification_options(distance, ap_mode, no_match, ranks)

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

    default_block = engine.default_block(gallery.device, torch.get_num_threads())
    chunk_size = _check_block(chunk_size, default_block[0], 'chunk_size')
    gallery_chunk_size = _check_block(gallery_chunk_size, default_block[1], 'gallery_chunk_size')

    pairs = _true_match_pairs(probe_lbl, gallery_lbl)
    match_rank = engine.rank_true_matches(probe, gallery, pairs, distance, chunk_size,
                                          gallery_chunk_size,
                                          OFFICIAL_MAX_RANK if ap_mode == 'official' else None)
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
def _check_block(value: Optional[int], default: int, name: str) -> int:
    if value is None:
        return default
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name}: expected a positive int, got {value!r}')
    return int(value)


def _true_match_pairs(probe_lbl: np.ndarray, gallery_lbl: np.ndarray) -> Dict[str, np.ndarray]:
    """Every (probe, true gallery match) pair, sorted by probe then gallery order.

    The gallery splits into two regions, each kept in gallery order: *mated* items
    (a label some probe carries, indices ``mated_idx``) and the others (distractors,
    ``other_idx``). ``mated_pos`` is each pair's match as a position in ``mated_idx``.
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
        num_matches=num_matches,
        first=first,
        mated_idx=mated_idx,
        other_idx=other_idx)


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
