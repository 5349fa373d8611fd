"""configs/pretrained: each source's TinyFace pipeline (colour order, scaling, 112x112, flip fusion, cosine)
on one real batch of a generated TinyFace tree, the flip fusion against AdaFace's formulas by known values,
and the documented two commands' path: converter output -> strict load -> a full test run.
"""
import os
import os.path as osp
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

from lrfr.apis import load_checkpoint_strict
from lrfr.evaluation.metrics import sample_embedding
from lrfr.registry import DATASETS, METRICS, MODELS
from lrfr.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / 'configs' / 'pretrained').glob('*.py'))
#: config -> (backbone type, depth, whether the source feeds RGB)
EXPECTED = {'arcface-torch_iresnet50_1xb128_tinyface': ('IResNet', 50, True),
            'arcface-torch_iresnet100_1xb128_tinyface': ('IResNet', 100, True),
            'adaface_ir50_1xb128_tinyface': ('AdaFaceIR', 50, False),
            'adaface_ir101_1xb128_tinyface': ('AdaFaceIR', 100, False)}

register_all_modules()


def make_tinyface(root: str) -> str:
    """TinyFace's official test tree: 2 probes, their 2 matches, 2 distractors; LR faces of mixed size."""
    rng = np.random.default_rng(0)
    files = {'Probe/10_1.jpg': (20, 16), 'Probe/12_1.jpg': (14, 11), 'Gallery_Match/10_2.jpg': (25, 21),
             'Gallery_Match/12_2.jpg': (18, 15), 'Gallery_Distractor/a.jpg': (19, 15),
             'Gallery_Distractor/b.jpg': (31, 24)}
    for name, size in files.items():
        path = osp.join(root, 'Testing_Set', name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


@pytest.fixture(scope='module')
def tinyface(tmp_path_factory) -> str:
    return make_tinyface(str(tmp_path_factory.mktemp('pretrained') / 'tinyface'))


def small(path: Path, root: str) -> Config:
    """The config at depth 18 (same layout, fewer units) on the generated tree, single process."""
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.depth = 18
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False, prefetch_factor=None)
    cfg.test_dataloader.dataset.data_root = root
    return cfg


def test_every_config_is_listed():
    assert sorted(p.stem for p in CONFIGS) == sorted(EXPECTED)


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_source_pipeline_on_a_real_batch(path, tinyface):
    backbone, depth, rgb = EXPECTED[path.stem]
    cfg = Config.fromfile(str(path))
    assert (cfg.model.backbone.type, cfg.model.backbone.depth) == (backbone, depth)
    assert cfg.model.flip_test and tuple(cfg.model.backbone.input_size) == (112, 112)
    assert dict(cfg.test_evaluator) == dict(type='IdentificationMetric', flip_fusion=True, l2_normalize=True,
                                            distance='cosine')
    cfg = small(path, tinyface)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = MODELS.build(cfg.model).eval()
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    raw = batch['inputs'][0]
    assert tuple(raw.shape) == (3, 112, 112)  # every tiny face resized to 112x112
    inputs = model.data_preprocessor(batch)['inputs']
    # (x / 255 - 0.5) / 0.5 in the source's colour order (the loader reads BGR)
    expected = ((raw.flip(0) if rgb else raw).float() / 255 - 0.5) / 0.5
    torch.testing.assert_close(inputs[0], expected)
    samples = model.test_step(batch)
    assert samples[0].embedding.shape == (512,) and samples[0].embedding_flip.shape == (512,)
    torch.testing.assert_close(torch.stack([s.embedding_flip for s in samples]),
                               model.tensor(inputs.flip(-1)), rtol=1e-4, atol=1e-4)
    metric = METRICS.build(cfg.test_evaluator)
    metric.process(batch, [s.to_dict() for s in samples])
    result = metric.compute_metrics(metric.results)
    assert set(result) == {'rank1', 'rank5', 'rank10', 'rank20', 'rank50', 'mAP'}


def adaface_fuse(embeddings: torch.Tensor, norms: torch.Tensor, method: str) -> torch.Tensor:
    """AdaFace's ``fuse_features_with_norm`` (validation_lq/validate_tinyface.py) restated: unit features and
    their norms, stacked ``(2, N, D)`` / ``(2, N, 1)``."""
    if method == 'pre_norm_vector_add':
        fused = (embeddings * norms).sum(0)
    elif method == 'norm_weighted_avg':
        fused = (embeddings * norms / norms.sum(0, keepdim=True)).sum(0)
    else:  # 'average' of the unit features
        fused = embeddings.sum(0)
    return fused / fused.norm(dim=1, keepdim=True)


def test_flip_fusion_is_adafaces_norm_weighted_fusion():
    """lrfr fuses the un-normalised embeddings (mean, then unit length): AdaFace's two norm-based fusions and
    arcface_torch's sum. Known values: e = (3, 4), |e| = 5; its mirror f = (0, -2), |f| = 2."""
    e, f = torch.tensor([3.0, 4.0]), torch.tensor([0.0, -2.0])
    ours = sample_embedding({'embedding': e, 'embedding_flip': f}, flip_fusion=True, l2_normalize=True, metric='t')
    torch.testing.assert_close(ours, torch.tensor([3.0, 2.0]) / 13 ** 0.5)
    stacked = torch.stack([e, f])[:, None]
    norms = stacked.norm(dim=2, keepdim=True)
    for method in ('pre_norm_vector_add', 'norm_weighted_avg'):
        torch.testing.assert_close(adaface_fuse(stacked / norms, norms, method)[0], ours)
    # not the plain average of unit features, which ignores the norms: (0.6, 0.8) + (0, -1) -> (3, -1) / sqrt(10)
    plain = adaface_fuse(stacked / norms, norms, 'average')[0]
    torch.testing.assert_close(plain, torch.tensor([3.0, -1.0]) / 10 ** 0.5)
    assert not torch.allclose(plain, ours)


def test_converted_checkpoint_runs_the_documented_test(tinyface, tmp_path):
    """convert (AdaFace ir_18 Lightning file) -> tools/test.py's strict load -> a full TinyFace test."""
    sys.path.insert(0, str(REPO / 'tools' / 'model_converters'))
    sys.path.insert(0, str(REPO / 'tests' / 'tools'))
    import adaface_ir
    from test_model_converters import adaface_layout, random_state
    src, out = str(tmp_path / 'adaface_ir18.ckpt'), str(tmp_path / 'ir18.pth')
    torch.save({'state_dict': random_state(adaface_layout(18), seed=3)}, src)
    adaface_ir.convert(src, out, 18)
    cfg = small(REPO / 'configs' / 'pretrained' / 'adaface_ir101_1xb128_tinyface.py', tinyface)
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    checkpoint = load_checkpoint_strict(runner.model, out)
    assert checkpoint['meta']['source'] == 'AdaFace ir18'
    metrics = runner.test()
    assert 0 <= metrics['tinyface/rank1'] <= 100 and metrics['tinyface/rank5'] == 100.0  # 4 gallery faces
    cfg.model.backbone.type = 'IResNet'  # an AdaFace file does not fit the arcface_torch layout
    with pytest.raises(RuntimeError, match=r'does not match the model.*layer1\.0\.downsample'):
        load_checkpoint_strict(MODELS.build(cfg.model), out)
