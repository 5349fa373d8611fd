"""IdentificationMetric: data samples in, the functional core's numbers out (in %), through mmengine."""
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmpretrain.structures import DataSample

from lrfr.evaluation.functional import evaluate_identification
from lrfr.registry import METRICS
from lrfr.structures import DISTRACTOR_LABEL, SUBSET_GALLERY, SUBSET_PROBE


def make_samples(rng, num_probes=8, num_gallery=30, dim=5, flip=False):
    """Probes then gallery (matches then distractors), as the TinyFace test set yields them."""
    probe_lbl = rng.integers(0, 4, num_probes)
    gallery_lbl = np.concatenate([np.arange(4), rng.integers(0, 4, 6),
                                  np.full(num_gallery - 10, DISTRACTOR_LABEL)])
    feats = rng.normal(size=(num_probes + num_gallery, dim)).astype(np.float32)
    flips = rng.normal(size=feats.shape).astype(np.float32)
    samples = []
    for i, (label, subset) in enumerate(
            [(l, SUBSET_PROBE) for l in probe_lbl] + [(l, SUBSET_GALLERY) for l in gallery_lbl]):
        s = DataSample(metainfo=dict(subset=subset, sample_idx=i)).set_gt_label(int(label))
        s.embedding = torch.from_numpy(feats[i])
        if flip:
            s.embedding_flip = torch.from_numpy(flips[i])
        samples.append(s)
    return samples, feats, flips, probe_lbl, gallery_lbl


def test_metric_through_evaluator_matches_core():
    rng = np.random.default_rng(0)
    samples, feats, _, probe_lbl, gallery_lbl = make_samples(rng)
    evaluator = Evaluator(METRICS.build(dict(type='IdentificationMetric', keep_features=True)))
    # Arrival order shuffled (as several ranks would deliver it): sample_idx restores it.
    order = rng.permutation(len(samples))
    for start in range(0, len(order), 7):
        evaluator.process([samples[i] for i in order[start:start + 7]])
    metrics = evaluator.evaluate(len(samples))
    ref = evaluate_identification(feats[:8], probe_lbl, feats[8:], gallery_lbl)
    assert set(metrics) == {'tinyface/rank1', 'tinyface/rank5', 'tinyface/rank10',
                            'tinyface/rank20', 'tinyface/rank50', 'tinyface/mAP'}
    assert metrics['tinyface/mAP'] == pytest.approx(100 * ref['mAP'], abs=1e-9)
    assert metrics['tinyface/rank5'] == pytest.approx(100 * ref['rank5'], abs=1e-9)
    metric = evaluator.metrics[0]
    np.testing.assert_allclose(metric.last_result['cmc'], ref['cmc'])
    assert torch.equal(metric.last_features['gallery_feats'], torch.from_numpy(feats[8:]))
    assert metric.last_features['gallery_labels'].tolist() == gallery_lbl.tolist()


def test_flip_fusion_l2_and_options():
    rng = np.random.default_rng(1)
    samples, feats, flips, probe_lbl, gallery_lbl = make_samples(rng, flip=True)
    metric = METRICS.build(dict(type='IdentificationMetric', flip_fusion=True, l2_normalize=True,
                                distance='cosine', ap_mode='exact', ranks=(1, 3), prefix='val'))
    metric.process(None, [s.to_dict() for s in samples])
    metrics = metric.evaluate(len(samples))
    fused = torch.nn.functional.normalize(torch.from_numpy((feats + flips) / 2), dim=1)
    ref = evaluate_identification(fused[:8], probe_lbl, fused[8:], gallery_lbl,
                                  distance='cosine', ap_mode='exact', ranks=(1, 3))
    assert set(metrics) == {'val/rank1', 'val/rank3', 'val/mAP'}
    assert metrics['val/mAP'] == pytest.approx(100 * ref['mAP'], abs=1e-9)
    # Without the fusion the numbers differ (the option is really used).
    plain = evaluate_identification(feats[:8], probe_lbl, feats[8:], gallery_lbl,
                                    distance='cosine', ap_mode='exact')
    assert plain['mAP'] != pytest.approx(ref['mAP'], abs=1e-6)


def test_bad_samples_and_configs():
    rng = np.random.default_rng(2)
    samples, *_ = make_samples(rng)
    with pytest.raises(ValueError, match='ap_mode'):
        METRICS.build(dict(type='IdentificationMetric', ap_mode='voc'))
    with pytest.raises(ValueError, match='ranks'):
        METRICS.build(dict(type='IdentificationMetric', ranks=(0, 5)))
    metric = METRICS.build(dict(type='IdentificationMetric', flip_fusion=True))
    with pytest.raises(KeyError, match='embedding_flip'):
        metric.process(None, [samples[0].to_dict()])
    metric = METRICS.build(dict(type='IdentificationMetric'))
    bare = samples[0].to_dict()
    del bare['embedding']
    with pytest.raises(KeyError, match='embedding'):
        metric.process(None, [bare])
    # Only probes: a clear error, not a crash deep inside.
    metric.process(None, [s.to_dict() for s in samples[:8]])
    with pytest.raises(ValueError, match='both probe and gallery'):
        metric.evaluate(8)
    # An unknown subset name (results left by a failed evaluate are dropped first).
    metric.results.clear()
    odd = samples[0].clone()
    odd.set_metainfo(dict(subset='train'))
    metric.process(None, [odd.to_dict()] + [s.to_dict() for s in samples[1:]])
    with pytest.raises(ValueError, match="subset='probe'"):
        metric.evaluate(len(samples))
    # The same image twice (sample_idx duplicated).
    metric.results.clear()
    metric.process(None, [s.to_dict() for s in samples] + [samples[3].to_dict()])
    with pytest.raises(ValueError, match='duplicate sample_idx'):
        metric.evaluate(len(samples) + 1)
