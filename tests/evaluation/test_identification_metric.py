"""IdentificationMetric: data samples in, the functional core's numbers out (in %), through mmengine."""
import json

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


def test_metric_through_evaluator_matches_core(tmp_path):
    rng = np.random.default_rng(0)
    samples, feats, _, probe_lbl, gallery_lbl = make_samples(rng)
    evaluator = Evaluator(METRICS.build(dict(
        type='IdentificationMetric', export_mat_dir=str(tmp_path / 'mats'), plot_dir=str(tmp_path / 'plots'),
        per_probe_file=str(tmp_path / 'per_probe.json'))))
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
    # What the options asked for, written by the metric in dataset order.
    from scipy.io import loadmat
    is_distractor = gallery_lbl == DISTRACTOR_LABEL
    np.testing.assert_array_equal(loadmat(str(tmp_path / 'mats' / 'probe.mat'))['probe_feature_map'], feats[:8])
    np.testing.assert_array_equal(loadmat(str(tmp_path / 'mats' / 'gallery.mat'))['gallery_feature_map'],
                                  feats[8:][~is_distractor])
    np.testing.assert_array_equal(loadmat(str(tmp_path / 'mats' / 'distractor.mat'))['distractor_feature_map'],
                                  feats[8:][is_distractor])
    for name in ('cmc.png', 'pr.png'):
        assert (tmp_path / 'plots' / name).read_bytes()[:4] == b'\x89PNG'
    per_probe = json.loads((tmp_path / 'per_probe.json').read_text())
    assert per_probe['probe_index'] == list(range(8))
    assert per_probe['label'] == probe_lbl.tolist()
    np.testing.assert_allclose(per_probe['ap'], ref['ap'])
    assert per_probe['first_match_rank'] == ref['first_match_rank'].tolist()
    assert 100 * np.mean(per_probe['ap']) == pytest.approx(metrics['tinyface/mAP'])
    assert 100 * np.mean(np.array(per_probe['first_match_rank']) == 1) == pytest.approx(metrics['tinyface/rank1'])


def test_metric_writes_nothing_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    samples = make_samples(np.random.default_rng(3))[0]
    metric = METRICS.build(dict(type='IdentificationMetric'))
    metric.process(None, [s.to_dict() for s in samples])
    metric.evaluate(len(samples))
    assert list(tmp_path.iterdir()) == []


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
