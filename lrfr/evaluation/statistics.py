"""Uncertainty of benchmark figures: mean ± std over seeds and a paired bootstrap over probes.

A method's score on a probe set is a mean of per-probe values (AP, or a rank-1 hit 0/1); two methods
evaluated on the same probes are compared by resampling the probes with replacement and applying the
same resample to both (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13 percentile
interval; the paired design of Koehn, "Statistical significance tests for machine translation
evaluation", EMNLP 2004). The pairing cancels the probe-difficulty variance both methods share.
"""
from typing import Dict, Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95


def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value) of per-seed figures.

    Args:
        values (Sequence[float]): one figure per seed.

    Returns:
        dict: ``mean``, ``std``, ``n``.
    """
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError('mean_std: no values')
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return dict(mean=float(arr.mean()), std=std, n=int(arr.size))


def paired_bootstrap(values_a: Sequence[float], values_b: Sequence[float],
                     num_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                     seed: int = 0, max_block: int = 4_000_000) -> Dict[str, float]:
    """Percentile bootstrap interval of ``mean(a) - mean(b)`` over paired per-probe values.

    Every resample draws ``P`` probe indices with replacement and applies them to both arrays, so a
    probe that is hard for both methods stays hard for both (the pairing).

    Args:
        values_a (Sequence[float]): ``(P,)`` per-probe values of method A (e.g. AP in %).
        values_b (Sequence[float]): ``(P,)`` per-probe values of method B, same probe order.
        num_resamples (int): bootstrap resamples. Defaults to 2,000.
        confidence (float): two-sided coverage in (0, 1). Defaults to 0.95.
        seed (int): seed of the resampling (same seed, same interval). Defaults to 0.
        max_block (int): most indices drawn at once (bounds memory; the result does not depend
            on it). Defaults to 4,000,000.

    Returns:
        dict: ``diff`` (observed ``mean(a) - mean(b)``), ``low``, ``high`` (interval bounds),
        ``num_resamples``, ``confidence``.
    """
    a = np.asarray(values_a, dtype=np.float64).reshape(-1)
    b = np.asarray(values_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f'paired_bootstrap: the two methods have {a.size} and {b.size} per-probe values; '
                         'they must be evaluated on the same probes')
    if a.size == 0:
        raise ValueError('paired_bootstrap: no probes')
    if int(num_resamples) < 1:
        raise ValueError(f'paired_bootstrap: num_resamples must be >= 1, got {num_resamples}')
    if not 0.0 < confidence < 1.0:
        raise ValueError(f'paired_bootstrap: confidence must be in (0, 1), got {confidence}')
    diff = a - b
    num_probes = diff.size
    rng = np.random.default_rng(seed)
    # Draw all indices in one stream (row after row), cut into blocks only to bound memory.
    rows_per_block = max(1, int(max_block) // num_probes)
    means = np.empty(int(num_resamples), dtype=np.float64)
    for start in range(0, int(num_resamples), rows_per_block):
        rows = min(rows_per_block, int(num_resamples) - start)
        idx = rng.integers(0, num_probes, size=(rows, num_probes))
        means[start:start + rows] = diff[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return dict(diff=float(diff.mean()), low=float(low), high=float(high),
                num_resamples=int(num_resamples), confidence=float(confidence))
