"""1:1 face verification on image pairs: ROC, TAR at fixed FAR, k-fold best-threshold accuracy.

The protocol of LFW (Huang et al. 2007, "unrestricted" view 2): 6,000 pairs in 10
consecutive folds; the accuracy of each fold uses the threshold that maximises accuracy
on the other 9 folds, and the mean and standard deviation over folds are reported.
TAR@FAR follows the IJB / MegaFace convention: the largest acceptance rate of genuine
pairs whose threshold accepts at most a fraction FAR of impostor pairs.

Scores are similarities (higher = more likely the same person): cosine similarity, or
the negative Euclidean distance.
"""
from typing import Any, Dict, Sequence

import numpy as np
import torch.nn.functional as F

from ._tensor import ArrayLike, as_features, as_tensor

DISTANCES = ('cosine', 'euclidean')


def pair_scores(feats1: ArrayLike, feats2: ArrayLike, distance: str = 'cosine') -> np.ndarray:
    """Similarity of row ``i`` of ``feats1`` with row ``i`` of ``feats2``.

    Args:
        feats1 (np.ndarray | torch.Tensor): ``(N, D)`` first images of the pairs.
        feats2 (np.ndarray | torch.Tensor): ``(N, D)`` second images.
        distance (str): ``'cosine'`` (similarity ``cos(a, b)``) or ``'euclidean'``
            (similarity ``-||a - b||``). Defaults to ``'cosine'``.

    Returns:
        np.ndarray: ``(N,)`` float64 scores.
    """
    if distance not in DISTANCES:
        raise ValueError(f'distance: expected one of {DISTANCES}, got {distance!r}')
    a = as_features(feats1, 'feats1').double()
    b = as_features(feats2, 'feats2', a.device).double()
    if a.shape != b.shape:
        raise ValueError(f'feats1 and feats2 must have the same shape, got {tuple(a.shape)} '
                         f'and {tuple(b.shape)}')
    if distance == 'cosine':
        s = (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1)
    else:
        s = -(a - b).norm(dim=1)
    return s.cpu().numpy()


def _check_scores(scores: ArrayLike, is_same: ArrayLike) -> tuple:
    s = as_tensor(scores, 'scores').double().cpu().numpy().reshape(-1)
    y = as_tensor(is_same, 'is_same').cpu().numpy().reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f'scores ({s.shape[0]}) and is_same ({y.shape[0]}) differ in length')
    if not np.isin(y, (0, 1)).all():
        raise ValueError('is_same: expected booleans or 0/1 values')
    y = y.astype(bool)
    if not np.isfinite(s).all():
        raise ValueError('scores contain NaN or Inf')
    if y.all() or not y.any():
        raise ValueError(f'need both genuine and impostor pairs, got {int(y.sum())} genuine and '
                         f'{int((~y).sum())} impostor')
    return s, y


def roc_curve(scores: ArrayLike, is_same: ArrayLike) -> Dict[str, np.ndarray]:
    """ROC over every distinct threshold: a pair is accepted when ``score >= threshold``.

    Args:
        scores (np.ndarray | torch.Tensor): ``(N,)`` similarities.
        is_same (np.ndarray | torch.Tensor): ``(N,)`` True for genuine pairs.

    Returns:
        dict: ``far``, ``tar`` (from 0, 0 at ``threshold=+inf`` to 1, 1) and
        ``threshold`` (descending), plus ``auc`` (trapezoid area under TAR(FAR)).
    """
    s, y = _check_scores(scores, is_same)
    thresholds, inverse = np.unique(-s, return_inverse=True)  # descending scores
    pos = np.cumsum(np.bincount(inverse, weights=y, minlength=thresholds.size))
    neg = np.cumsum(np.bincount(inverse, weights=~y, minlength=thresholds.size))
    tar = np.concatenate([[0.0], pos / y.sum()])
    far = np.concatenate([[0.0], neg / (~y).sum()])
    threshold = np.concatenate([[np.inf], -thresholds])
    return dict(far=far, tar=tar, threshold=threshold, auc=float(np.trapezoid(tar, far)))


def tar_at_far(scores: ArrayLike, is_same: ArrayLike, far: float) -> Dict[str, float]:
    """Largest TAR whose threshold accepts at most ``floor(far * num_impostors)`` impostors.

    With impostor scores sorted in decreasing order ``v_1 >= v_2 >= ...`` and
    ``k = floor(far * N_impostor)``, pairs scoring strictly above ``v_{k+1}`` are
    accepted (ties with ``v_{k+1}`` are rejected, so FAR never exceeds the target).

    Args:
        scores (np.ndarray | torch.Tensor): ``(N,)`` similarities.
        is_same (np.ndarray | torch.Tensor): ``(N,)`` True for genuine pairs.
        far (float): target false accept rate in (0, 1].

    Returns:
        dict: ``tar``, the achieved ``far`` and the ``threshold`` (accept if ``score >``).
    """
    if not 0 < far <= 1:
        raise ValueError(f'far: expected a rate in (0, 1], got {far}')
    s, y = _check_scores(scores, is_same)
    impostor = np.sort(s[~y])[::-1]
    k = int(np.floor(far * impostor.size + 1e-9))  # tolerate 1e-3 * 1000 = 0.99999...
    if k >= impostor.size:
        return dict(tar=1.0, far=1.0, threshold=-np.inf)
    threshold = impostor[k]
    return dict(tar=float(np.mean(s[y] > threshold)), far=float(np.mean(impostor > threshold)),
                threshold=float(threshold))


def best_threshold(scores: ArrayLike, is_same: ArrayLike) -> Dict[str, float]:
    """The threshold with the best accuracy (accept a pair if ``score > threshold``).

    Every split of the sorted distinct scores is tried; the threshold is placed midway
    in the gap of the best split (so it generalises to unseen pairs), ``-inf`` when
    accepting everything is best. Among equally good splits the lowest is taken.

    Args:
        scores (np.ndarray | torch.Tensor): ``(N,)`` similarities.
        is_same (np.ndarray | torch.Tensor): ``(N,)`` True for genuine pairs.

    Returns:
        dict: ``threshold`` and its ``accuracy`` on these pairs.
    """
    s, y = _check_scores(scores, is_same)
    values, inverse = np.unique(s, return_inverse=True)  # ascending
    pos_lt = np.cumsum(np.bincount(inverse, weights=y, minlength=values.size))
    neg_lt = np.cumsum(np.bincount(inverse, weights=~y, minlength=values.size))
    # Split j accepts scores >= values[j] (j = 0: everything; j = n: nothing).
    correct = np.concatenate([[y.sum()], y.sum() - pos_lt + neg_lt])
    best = int(np.argmax(correct))
    if best == 0:
        threshold = -np.inf
    elif best == values.size:
        threshold = float(values[-1])
    else:
        lo, hi = float(values[best - 1]), float(values[best])
        threshold = lo + (hi - lo) / 2
        if not lo <= threshold < hi:  # adjacent floats: the midpoint rounds onto hi
            threshold = lo
    return dict(threshold=threshold, accuracy=float(correct[best] / s.size))


def kfold_accuracy(scores: ArrayLike, is_same: ArrayLike, n_folds: int = 10) -> Dict[str, Any]:
    """LFW-style accuracy: pairs split into ``n_folds`` consecutive folds (in the given
    order); each fold is scored with the best threshold of the other folds.

    Args:
        scores (np.ndarray | torch.Tensor): ``(N,)`` similarities, in protocol order.
        is_same (np.ndarray | torch.Tensor): ``(N,)`` True for genuine pairs.
        n_folds (int): number of folds. Defaults to 10.

    Returns:
        dict: ``accuracy`` (mean over folds), ``accuracy_std`` (population std, as
        ``np.std``), ``fold_accuracy`` and ``thresholds`` (arrays, one per fold).
    """
    s, y = _check_scores(scores, is_same)
    if not isinstance(n_folds, int) or n_folds < 2 or n_folds > s.size:
        raise ValueError(f'n_folds: expected an int in [2, {s.size}], got {n_folds!r}')
    folds = np.array_split(np.arange(s.size), n_folds)
    accs, ths = [], []
    for test in folds:
        train = np.setdiff1d(np.arange(s.size), test)
        if y[train].all() or not y[train].any():
            raise ValueError('a training split has only one kind of pair; shuffle the pairs '
                             'or use fewer folds')
        th = best_threshold(s[train], y[train])['threshold']
        accs.append(float(np.mean((s[test] > th) == y[test])))
        ths.append(th)
    accs_arr = np.asarray(accs)
    return dict(accuracy=float(accs_arr.mean()), accuracy_std=float(accs_arr.std()),
                fold_accuracy=accs_arr, thresholds=np.asarray(ths))


def evaluate_verification(feats1: ArrayLike, feats2: ArrayLike, is_same: ArrayLike,
                          distance: str = 'cosine',
                          far_targets: Sequence[float] = (1e-4, 1e-3, 1e-2),
                          n_folds: int = 10) -> Dict[str, Any]:
    """All verification figures for a list of pairs.

    Args:
        feats1 (np.ndarray | torch.Tensor): ``(N, D)`` first image of each pair.
        feats2 (np.ndarray | torch.Tensor): ``(N, D)`` second image of each pair.
        is_same (np.ndarray | torch.Tensor): ``(N,)`` True for genuine pairs.
        distance (str): ``'cosine'`` or ``'euclidean'``. Defaults to ``'cosine'``.
        far_targets (Sequence[float]): FARs for TAR@FAR. Defaults to ``(1e-4, 1e-3, 1e-2)``.
        n_folds (int): cross-validation folds for the accuracy. Defaults to 10.

    Returns:
        dict: ``accuracy``, ``accuracy_std``, ``auc``, ``tar_at_far`` (dict far -> TAR),
        ``fold_accuracy``, the ``roc`` curve and the pair ``scores`` (fractions, not
        percent).
    """
    scores = pair_scores(feats1, feats2, distance)
    acc = kfold_accuracy(scores, is_same, n_folds)
    roc = roc_curve(scores, is_same)
    tars = {float(f): tar_at_far(scores, is_same, f)['tar'] for f in far_targets}
    return dict(accuracy=acc['accuracy'], accuracy_std=acc['accuracy_std'], auc=roc['auc'],
                tar_at_far=tars, fold_accuracy=acc['fold_accuracy'], roc=roc, scores=scores)
