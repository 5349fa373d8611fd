"""Error bounds of the identification scores and the exact decision of near-ties.

A private part of the identification engine. The decision "gallery item ``j`` ranks
before true match ``m`` for probe ``p``" is defined on the stored feature values
only (never on how a matrix product was sliced or which BLAS kernel ran)::

    before(j, m) = R(p, g_j) < R(p, g_m)  or  (R(p, g_j) == R(p, g_m) and j < m)

where ``R`` is a deterministic float64 function of two vectors: for Euclidean ranking
the correctly rounded value of ``X = ||g||^2 - 2 p.g`` (``math.fsum`` of exact
two-product terms), for cosine ``-fsum(p*g) / (|p| |g|)`` from correctly rounded
sums. Any computed score ``s`` with a proven bound ``|s - X| <= E`` decides the pair
whenever ``|s_j - s_m| > E_j + E_m + e_j + e_m`` (``e``: the bound of ``|R - X|``):
then ``X_j - X_m``, hence ``R_j - R_m``, has the sign of ``s_j - s_m``. Only the
remaining near-ties are decided by ``R``. Bounds follow Higham, "Accuracy and
Stability of Numerical Algorithms" (2002), Sec. 3.1: a dot product of length ``n``
in floating point, in any summation order, with or without FMA, errs by at most
``gamma_n * sum |x_i y_i|``, ``gamma_n = n u / (1 - n u)``. See docs/evaluation.md.
"""
import math
from typing import NamedTuple, Tuple

import numpy as np
import torch

#: Relative margin on every bound: covers the float64 rounding of the bound formulas.
_MARGIN = 1.001
#: Cosine ranking needs norms that are 0 or at least F.normalize's eps (1e-12): below
#: it the normalisation saturates and underflow would void the relative bounds.
COSINE_MIN_NORM = 1e-12


def unit_roundoff(dtype: torch.dtype) -> float:
    """``u`` of a float dtype, and of the matrix products under torch's matmul precision.

    ``torch.set_float32_matmul_precision('high'/'medium')`` lets float32 products run
    in TF32/bfloat16: the bound then uses their unit roundoff (2**-11, 2**-8).
    """
    if dtype == torch.float64:
        return 2.0 ** -53
    precision = torch.get_float32_matmul_precision()
    return {'highest': 2.0 ** -24, 'high': 2.0 ** -11}.get(precision, 2.0 ** -8)


def gamma(n: int, u: float) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)``; infinite when ``n u >= 1``."""
    return n * u / (1 - n * u) if n * u < 1 else math.inf


def _eta(dim: int, dtype: torch.dtype) -> float:
    """Absolute slack for underflow (gradual or flushed to zero): one smallest normal
    number per rounded operation of a length-``dim`` dot product, twice over."""
    return 2.0 * (dim + 4) * torch.finfo(dtype).tiny


def score_bound(distance: str, dim: int, dtype: torch.dtype, probe_norm: torch.Tensor,
                item_norm: torch.Tensor, exact_too: bool = True) -> torch.Tensor:
    """Upper bound of ``|s - X|`` for scores computed in ``dtype`` (+ ``|R - X|``).

    Euclidean ``s = fl(b + fl(-2p . g))`` with ``b`` = ``||g||^2`` summed in float64 and
    rounded once to ``dtype``: ``|s - X| <= gamma_{D+1} 2|p||g| + (gamma_4 + gamma64_{D+1})
    ||g||^2 + eta`` (``u`` for the squares, the bias and the final sum) (Cauchy-Schwarz bounds ``sum |p_i g_i|``; ``gamma64`` is float64's).
    Cosine
    ``s = fl(p_hat . g_hat)`` with normalised, rounded operands:
    ``|s - X| <= gamma_{3D+10} + eta`` (each operand's relative error is at most
    ``gamma_{D+3}``, and ``sum |x_i y_i| <= |x| |y| <= 1``). With ``exact_too`` the bound of
    ``R`` is added: ``2^-52 (||g||^2 + 2|p||g|)`` (correct rounding) or ``2^-48`` (cosine).

    Args:
        distance (str): ``'euclidean'`` or ``'cosine'``.
        dim (int): feature dimension ``D``.
        dtype (torch.dtype): precision the scores were computed in.
        probe_norm (torch.Tensor): upper bounds of the probes' norms (float64).
        item_norm (torch.Tensor): upper bounds of the gallery items' norms (float64),
            broadcastable against ``probe_norm``.
        exact_too (bool): add the bound of ``R``. Defaults to True.

    Returns:
        torch.Tensor: float64 bounds, the broadcast shape of the norms.
    """
    u = unit_roundoff(dtype)
    eta = _eta(dim, dtype) + _eta(dim, torch.float64)
    if distance == 'euclidean':
        gg = item_norm * item_norm
        pg = 2.0 * probe_norm * item_norm
        # the bias ||g||^2 is summed in float64 and rounded once to dtype
        bound = gamma(dim + 1, u) * pg + (gamma(4, u) + gamma(dim + 1, 2.0 ** -53)) * gg + eta
        if exact_too:
            bound = bound + 2.0 ** -52 * (gg + pg)
    else:
        bound = torch.full(torch.broadcast_shapes(probe_norm.shape, item_norm.shape),
                           gamma(3 * dim + 10, u) + eta + (2.0 ** -48 if exact_too else 0.0),
                           dtype=torch.float64, device=item_norm.device)
    return bound * _MARGIN


class Norms(NamedTuple):
    """Squared norms (``sq``: the squares rounded in the features' dtype, summed in
    float64) and float64 norm upper bounds (``upper``)."""
    sq: torch.Tensor
    upper: torch.Tensor


def norms(x: torch.Tensor, block: int) -> Norms:
    """Row norms of ``x``, ``block`` rows at a time (no float64 copy of the rows).

    ``sq`` errs by at most ``(u + gamma64_D (1 + u)) ||x||^2`` (``u`` of ``x``'s dtype:
    the rounded squares); ``upper`` inflates it by that and one more rounding.
    """
    sq = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for a in range(0, x.shape[0], block):
        part = x[a:a + block]
        sq[a:a + block] = (part * part).sum(1, dtype=torch.float64)
    u = torch.finfo(x.dtype).eps / 2
    rel = u + gamma(x.shape[1] + 1, 2.0 ** -53) * (1 + u)
    return Norms(sq, (sq / (1 - rel)).sqrt() * (1.0 + 2.0 ** -50))


def check_cosine_norms(norm: torch.Tensor, name: str) -> None:
    """Cosine ranking: each norm must be 0 or at least ``COSINE_MIN_NORM``."""
    bad = (norm > 0) & (norm < COSINE_MIN_NORM)
    if bool(bad.any()):
        raise ValueError(f"{name}: distance='cosine' needs feature norms of 0 or >= "
                         f'{COSINE_MIN_NORM:g}; {int(bad.sum())} row(s) are nonzero but smaller')


def band(t: torch.Tensor, delta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``[lo, hi]`` in ``t``'s dtype, rounded outwards, containing ``[t - delta, t + delta]``."""
    t64 = t.to(torch.float64)
    lo = (t64 - delta).to(t.dtype)
    hi = (t64 + delta).to(t.dtype)
    lo = torch.nextafter(lo, lo.new_tensor(-math.inf))
    hi = torch.nextafter(hi, hi.new_tensor(math.inf))
    return lo, hi


def exact_scores(distance: str, probe: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``R(p, g)`` for rows ``probe[k]``, ``items[k]``: a function of the two vectors only.

    Every product is split into an exact float64 sum of two terms (Dekker's
    two-product with Veltkamp splitting; exact barring underflow, which ``eta``
    covers) and ``math.fsum`` rounds their sum correctly, whatever the order.
    """
    p = np.asarray(probe, dtype=np.float64)
    g = np.asarray(items, dtype=np.float64)
    gp = np.concatenate(_two_product(g, p), axis=1)  # (n, 2D): the exact products, split
    if distance == 'euclidean':
        terms = np.concatenate([np.concatenate(_two_product(g, g), axis=1), -2.0 * gp], axis=1)
        return np.array([math.fsum(row) for row in terms])
    dot = np.array([math.fsum(row) for row in gp])
    norms = [np.maximum(np.sqrt([math.fsum(row) for row in np.concatenate(_two_product(v, v), axis=1)]),
                        COSINE_MIN_NORM) for v in (p, g)]
    return -dot / (norms[0] * norms[1])


def _two_product(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``a * b = hi + lo`` exactly (float64, elementwise; Dekker 1971)."""
    hi = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return hi, lo


def _split(a: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Veltkamp's split of float64 values into two 26-bit halves (large values are
    scaled down first so the split cannot overflow)."""
    big = np.abs(a) > 2.0 ** 996
    s = np.where(big, a * 2.0 ** -28, a)
    c = 134217729.0 * s  # 2^27 + 1
    hi = c - (c - s)
    lo = s - hi
    return np.where(big, hi * 2.0 ** 28, hi), np.where(big, lo * 2.0 ** 28, lo)


def resolve(distance: str, probe: torch.Tensor, gallery: torch.Tensor, probe_norms: Norms,
            gallery_norms: Norms, cand_probe: np.ndarray, cand_item: np.ndarray,
            cand_match: np.ndarray) -> np.ndarray:
    """Decide ``before(j, m)`` for near-tied candidates, in two stages.

    Stage 1 recomputes the scores in float64 (bound ``E_64``, one matrix-vector product
    per probe over its candidates) and decides every candidate whose gap exceeds the
    combined bounds; stage 2 computes ``R`` for the few left (exact duplicates, mostly)
    and applies the rule above.

    Args:
        distance (str): ``'euclidean'`` or ``'cosine'``.
        probe (torch.Tensor): ``(P, D)`` probe features (as given, not rescaled).
        gallery (torch.Tensor): ``(G, D)`` gallery features.
        probe_norms, gallery_norms (Norms): their float64 norms.
        cand_probe, cand_item, cand_match (np.ndarray): per candidate, the probe, the
            gallery item ``j`` and the true match ``m`` (gallery indices).

    Returns:
        np.ndarray: bool, True where item ``j`` ranks before match ``m``.
    """
    if cand_probe.size == 0:
        return np.zeros(0, dtype=bool)
    num_gallery = gallery.shape[0]
    keys = np.concatenate([cand_probe * num_gallery + cand_item,
                           cand_probe * num_gallery + cand_match])
    uniq, inverse = np.unique(keys, return_inverse=True)  # sorted: grouped by probe
    key_probe, key_item = uniq // num_gallery, uniq % num_gallery
    dev = gallery.device
    item_t = torch.as_tensor(key_item, device=dev)
    dot = torch.empty(uniq.size, dtype=torch.float64, device=dev)
    g_sq = torch.empty(uniq.size, dtype=torch.float64, device=dev)
    p_sq = torch.empty(uniq.size, dtype=torch.float64, device=dev)
    starts = np.flatnonzero(np.diff(key_probe, prepend=-1))
    for a, b in zip(starts, np.append(starts[1:], uniq.size)):
        p = probe[int(key_probe[a])].to(torch.float64)
        g = gallery.index_select(0, item_t[a:b]).to(torch.float64)
        dot[a:b] = g @ p
        g_sq[a:b] = (g * g).sum(1)
        p_sq[a:b] = p @ p
    probe_t = torch.as_tensor(key_probe, device=dev)
    if distance == 'euclidean':
        y = g_sq - 2.0 * dot
    else:
        y = -dot / (g_sq.sqrt().clamp_min(COSINE_MIN_NORM) * p_sq.sqrt().clamp_min(COSINE_MIN_NORM))
    bound = score_bound(distance, probe.shape[1], torch.float64, probe_norms.upper[probe_t],
                        gallery_norms.upper[item_t])
    y, bound = y.cpu().numpy(), bound.cpu().numpy()
    n = cand_probe.size
    yj, ym = y[inverse[:n]], y[inverse[n:]]
    before = yj < ym
    near = np.abs(yj - ym) <= bound[inverse[:n]] + bound[inverse[n:]]
    if near.any():
        need = np.unique(np.concatenate([inverse[:n][near], inverse[n:][near]]))
        exact = np.full(uniq.size, np.nan)
        exact[need] = exact_scores(
            distance, probe[torch.as_tensor(key_probe[need], device=dev)].cpu().numpy(),
            gallery[torch.as_tensor(key_item[need], device=dev)].cpu().numpy())
        rj, rm = exact[inverse[:n][near]], exact[inverse[n:][near]]
        before[near] = (rj < rm) | ((rj == rm) & (cand_item[near] < cand_match[near]))
    return before
