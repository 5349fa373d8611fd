"""Failure grids: tools/test.py --show-dir on the demo draws one PNG per failed / sampled correct probe."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from lrfr.structures import SUBSET_GALLERY, SUBSET_PROBE
from lrfr.visualization import CELL_H, CELL_W, DPI, FailureGridMetric, add_failure_grids

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEST = osp.join(REPO, 'tools', 'test.py')
FR_CONFIG = osp.join(REPO, 'configs', 'demo', 'centreface_1xb32_demo-hr-native.py')


def grid_shape(top_k):
    return round(CELL_H * DPI), round((top_k + 2) * CELL_W * DPI)


def test_test_tool_show_dir_draws_failures_and_correct_probes(tmp_path, demo_root):
    os.makedirs(tmp_path / 'data')
    os.symlink(demo_root, tmp_path / 'data' / 'demo_tinyface')
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, TEST, FR_CONFIG, '--random-init', '--work-dir', 'wd', '--no-plots',
                           '--show-dir', 'show'], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = sorted(os.listdir(tmp_path / 'show' / 'failures'))
    correct = sorted(os.listdir(tmp_path / 'show' / 'correct'))
    # an untrained model on 80 probes: many failures (capped at 50), and 5 correct ones sampled
    assert len(failures) == 50 and 1 <= len(correct) <= 5
    assert 'probes fail at rank 1' in proc.stdout + proc.stderr
    img = cv2.imread(str(tmp_path / 'show' / 'failures' / failures[0]))
    assert img.shape[:2] == grid_shape(5)
    assert img.std() > 10  # faces were drawn, not a blank canvas


def fake_sample(label, subset, idx, path, feat):
    return dict(embedding=torch.tensor(feat, dtype=torch.float32), gt_label=torch.tensor([label]),
                subset=subset, sample_idx=idx, img_path=path)


def test_metric_picks_failures_by_rank_one(tmp_path):
    face = str(tmp_path / 'f.png')
    cv2.imwrite(face, np.full((20, 16, 3), 200, np.uint8))
    metric = FailureGridMetric(out_dir=str(tmp_path / 'grids'), top_k=2, num_correct=5)
    samples = [fake_sample(1, SUBSET_PROBE, 0, face, [0, 0]),      # nearest gallery face: id 1 (correct)
               fake_sample(2, SUBSET_PROBE, 1, face, [10, 0]),     # nearest: id 3 (failure)
               fake_sample(1, SUBSET_GALLERY, 2, face, [0.1, 0]),
               fake_sample(3, SUBSET_GALLERY, 3, face, [9.9, 0]),
               fake_sample(2, SUBSET_GALLERY, 4, face, [12, 0]),
               fake_sample(-100, SUBSET_GALLERY, 5, face, [5, 5])]
    metric.process(None, samples)
    assert metric.compute_metrics(metric.results) == {}
    assert os.listdir(tmp_path / 'grids' / 'failures') == ['00001_f.png']
    assert os.listdir(tmp_path / 'grids' / 'correct') == ['00000_f.png']
    assert cv2.imread(str(tmp_path / 'grids' / 'failures' / '00001_f.png')).shape[:2] == grid_shape(2)


def test_add_failure_grids_copies_the_metric_options():
    cfg = Config(dict(test_evaluator=dict(type='IdentificationMetric', flip_fusion=True, distance='cosine')))
    assert add_failure_grids(cfg, 'out')
    grid = cfg.test_evaluator[1]
    assert grid['type'] == 'FailureGridMetric' and grid['flip_fusion'] and grid['distance'] == 'cosine'
    assert not add_failure_grids(Config(dict(test_evaluator=dict(type='SRQualityMetric'))), 'out')
    with pytest.raises(ValueError, match='top_k must be >= 1'):
        FailureGridMetric(out_dir='x', top_k=0)
