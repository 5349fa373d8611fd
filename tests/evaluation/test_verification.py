"""1:1 verification: functional core on hand-computed cases, and the VerificationMetric plugin."""
import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from lrfr.evaluation.functional import (best_threshold, evaluate_verification, kfold_accuracy,
                                        pair_scores, roc_curve, tar_at_far)
from lrfr.registry import METRICS

# Genuine pairs score 0.9, 0.8, 0.4, 0.3; impostors 0.7, 0.5, 0.2, 0.1.
SCORES = np.array([0.9, 0.8, 0.4, 0.3, 0.7, 0.5, 0.2, 0.1])
SAME = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)


def test_roc_and_auc_known_values():
    roc = roc_curve(SCORES, SAME)
    # Thresholds descend through every score: accept score >= threshold.
    np.testing.assert_allclose(roc['threshold'][1:], np.sort(SCORES)[::-1])
    np.testing.assert_allclose(roc['tar'], [0, .25, .5, .5, .5, .75, 1, 1, 1])
    np.testing.assert_allclose(roc['far'], [0, 0, 0, .25, .5, .5, .5, .75, 1])
    # AUC = P(genuine > impostor) = 12 of 16 pairs of pairs.
    assert roc['auc'] == pytest.approx(12 / 16)


def test_tar_at_far_known_values():
    # FAR 1/4 allows one impostor (0.7): accept > 0.5 -> TAR 2/4.
    assert tar_at_far(SCORES, SAME, 0.25) == dict(tar=0.5, far=0.25, threshold=0.5)
    # FAR below 1/4 allows none: accept > 0.7.
    assert tar_at_far(SCORES, SAME, 0.1)['tar'] == 0.5
    assert tar_at_far(SCORES, SAME, 0.1)['far'] == 0.0
    # 1e-3 of 1,000 impostors is exactly one, despite 1e-3 * 1000 rounding.
    s = np.concatenate([np.linspace(0, 1, 1000), [2.0, 0.5]])
    y = np.concatenate([np.zeros(1000, bool), [True, True]])
    assert tar_at_far(s, y, 1e-3)['far'] == pytest.approx(1e-3)
    with pytest.raises(ValueError, match='far'):
        tar_at_far(SCORES, SAME, 0.0)


def test_best_threshold_and_kfold():
    bt = best_threshold(SCORES, SAME)
    # Accept > 0.7: genuine 0.9, 0.8 right, impostors all rejected -> 6/8; accept > 0.2: also 6/8.
    assert bt['accuracy'] == pytest.approx(6 / 8)
    # The lowest of the equally good splits (0.2 | 0.3), threshold midway in its gap.
    assert bt['threshold'] == pytest.approx(0.25)
    # Separable scores: every fold is perfect.
    rng = np.random.default_rng(0)
    same = rng.random(200) < 0.5
    sep = np.where(same, 2 + rng.random(200), rng.random(200))
    kf = kfold_accuracy(sep, same, n_folds=10)
    assert kf['accuracy'] == 1.0 and kf['accuracy_std'] == 0.0 and len(kf['thresholds']) == 10
    # One fold's threshold comes from the others: a pair flipped in fold 0 costs only fold 0.
    flipped = same.copy()
    flipped[0] = ~flipped[0]
    kf = kfold_accuracy(sep, flipped, n_folds=10)
    assert kf['fold_accuracy'][0] == pytest.approx(19 / 20)
    assert kf['fold_accuracy'][1:].tolist() == [1.0] * 9
    with pytest.raises(ValueError, match='both genuine and impostor'):
        kfold_accuracy(SCORES, np.ones(8, bool))
    with pytest.raises(ValueError, match='n_folds'):
        kfold_accuracy(SCORES, SAME, n_folds=1)


def test_pair_scores_and_evaluate():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    b = np.array([[2.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(pair_scores(a, b), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(pair_scores(a, b, 'euclidean'), [-1.0, -np.sqrt(8), -5.0])
    rng = np.random.default_rng(1)
    f1 = rng.normal(size=(40, 64))
    same = np.arange(40) % 2 == 0
    f2 = np.where(same[:, None], f1 + 0.05 * rng.normal(size=(40, 64)),
                  rng.normal(size=(40, 64)))
    res = evaluate_verification(f1, f2, same, n_folds=4)
    assert res['accuracy'] == 1.0 and res['auc'] == 1.0
    assert res['tar_at_far'] == {1e-4: 1.0, 1e-3: 1.0, 1e-2: 1.0}


def test_verification_metric():
    rng = np.random.default_rng(2)
    f1, f2 = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    same = rng.random(20) < 0.5
    f2[same] = f1[same] + 0.3 * rng.normal(size=(same.sum(), 4))
    samples = []
    for pid in rng.permutation(20):  # arrival order does not matter: pair_id orders the folds
        for side, f in ((0, f1[pid]), (1, f2[pid])):
            s = DataSample(metainfo=dict(pair_id=int(pid), pair_side=side,
                                         pair_label=bool(same[pid])))
            s.set_gt_label(0)
            s.embedding = torch.from_numpy(f)
            samples.append(s.to_dict())
    metric = METRICS.build(dict(type='VerificationMetric', n_folds=5, far_targets=(0.1,)))
    metric.process(None, samples)
    out = metric.evaluate(len(samples))
    ref = evaluate_verification(f1, f2, same, n_folds=5, far_targets=(0.1,))
    assert out['verification/accuracy'] == pytest.approx(100 * ref['accuracy'])
    assert out['verification/TAR@FAR=0.1'] == pytest.approx(100 * ref['tar_at_far'][0.1])
    assert out['verification/AUC'] == pytest.approx(100 * ref['auc'])
    # Genuine flag from gt_label when pair_label is absent; a missing side is an error.
    metric.process(None, [{k: v for k, v in s.items() if k != 'pair_label'} for s in samples[:-1]])
    with pytest.raises(ValueError, match='lack an image'):
        metric.evaluate(len(samples) - 1)
    with pytest.raises(KeyError, match='pair_id'):
        metric.process(None, [dict(embedding=torch.zeros(4), gt_label=torch.tensor([1]))])
    with pytest.raises(ValueError, match='distance'):
        METRICS.build(dict(type='VerificationMetric', distance='l1'))
