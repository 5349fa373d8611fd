"""tools/analysis_tools/browse_dataset.py (pipeline outputs as an image grid) and analyze_logs.py (curves from
mmengine's JSON scalar logs): known sizes and values, and their one-line errors."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'analysis_tools')


def _load(name):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        spec = importlib.util.spec_from_file_location(name, osp.join(TOOLS, f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(osp.join(REPO, 'tools'))
    return module


def run(args, cwd):
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def browse():
    return _load('browse_dataset')


@pytest.fixture(scope='module')
def logs():
    return _load('analyze_logs')


def _sample(h, w, label, branch, hr=None):
    sample = BaseDataElement(metainfo=dict(branch=branch), gt_label=torch.tensor([label]))
    if hr is not None:
        sample.hr_img = hr
    return dict(inputs=torch.full((3, h, w), 10, dtype=torch.uint8), data_samples=sample)


def test_cells_pairs_side_by_side_and_grid_sizes(browse):
    hr = torch.full((3, 8, 6), 200, dtype=torch.uint8)
    pair = browse.sample_cell(_sample(8, 6, 1, 'syn', hr), classes=['a', 'b'], scale=2)
    # LR (16x12 at scale 2) | gap | HR (16x12), above the caption
    assert pair.shape == (16 + browse.CAPTION_H, 12 + browse.GAP + 12, 3)
    assert (pair[:16, :12] == 10).all() and (pair[:16, -12:] == 200).all()
    single = browse.sample_cell(_sample(8, 6, 0, 'nat'), scale=1)
    assert single.shape == (8 + browse.CAPTION_H, 6, 3)
    canvas = browse.grid([pair, single, single], cols=2)
    h, w = pair.shape[:2]
    assert canvas.shape == (2 * (h + browse.GAP) + browse.GAP, 2 * (w + browse.GAP) + browse.GAP, 3)
    assert browse.spread(10, 4) == [0, 2, 5, 7] and browse.spread(3, 5) == [0, 1, 2]


def test_browse_dataset_cli_on_the_demo_pairs(tmp_path):
    from lrfr.datasets.converters.demo import ensure_demo
    ensure_demo(str(tmp_path / 'data' / 'demo_tinyface'))
    proc = run([osp.join(TOOLS, 'browse_dataset.py'), 'lrfr::demo/vdsr_1xb32_demo-pairs.py', '--out', 'grid',
                '--num', '3', '--cols', '2', '--scale', '1'], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    image = cv2.imread(str(tmp_path / 'grid' / 'train_dataloader_dataset.png'))
    # 56x48 LR input | 56x48 HR target per cell, 3 cells in 2 columns
    cell_h, cell_w = 56 + 14, 48 + 2 + 48
    assert image.shape == (2 * (cell_h + 2) + 2, 2 * (cell_w + 2) + 2, 3)
    lr, hr = image[2:58, 2:50].astype(int), image[2:58, 52:100].astype(int)
    assert np.abs(lr - hr).mean() > 1  # the LR input is not the HR target
    proc = run([osp.join(TOOLS, 'browse_dataset.py'), 'lrfr::demo/vdsr_1xb32_demo-pairs.py', '--out', 'g',
                '--key', 'train_dataloader.nothing'], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: lrfr::demo/vdsr_1xb32_demo-pairs.py: no dataset at 'train_dataloader.nothing' (failed at 'nothing')")


def _write_log(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    return str(path)


def test_plot_curve_several_runs_on_one_plot(logs, tmp_path):
    a = _write_log(tmp_path / 'work_dirs' / 'run_a' / '20260101_000000' / 'vis_data' / 'scalars.json',
                   [dict(loss=2.0, lr=0.1, step=10), dict(loss=1.5, lr=0.1, step=20),
                    {'tinyface/mAP': 12.5, 'step': 20}])
    b = _write_log(tmp_path / 'b.json', [dict(loss=3.0, step=5), dict(loss=1.0, step=15)])
    out = tmp_path / 'curve.png'
    drawn = logs.plot_curve([a, b], ['loss'], str(out))
    assert drawn == {'run_a': ([10, 20], [2.0, 1.5]), 'b': ([5, 15], [3.0, 1.0])}
    assert cv2.imread(str(out)) is not None
    drawn = logs.plot_curve([a], ['loss', 'tinyface/mAP'], str(out), legend=['mine'])
    assert drawn == {'mine: loss': ([10, 20], [2.0, 1.5]), 'mine: tinyface/mAP': ([20], [12.5])}
    assert logs.find_log(str(tmp_path / 'work_dirs' / 'run_a')) == a
    with pytest.raises(logs.ConfigError, match=r"--legend: 1 names for 2 logs"):
        logs.plot_curve([a, b], ['loss'], str(out), legend=['x'])


def test_analyze_logs_cli_errors(tmp_path):
    log = _write_log(tmp_path / 'l.json', [dict(loss=1.0, step=1)])
    proc = run([osp.join(TOOLS, 'analyze_logs.py'), 'plot_curve', log, '--keys', 'acc', '--out', 'c.png'], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: none of the keys ['acc'] is in the logs; they have {{'{log}': ['loss']}}")
    (tmp_path / 'bad.json').write_text('{"loss": 1, "step": 1}\nnot json\n')
    proc = run([osp.join(TOOLS, 'analyze_logs.py'), 'plot_curve', 'bad.json', '--out', 'c.png'], tmp_path)
    assert proc.returncode == 2 and 'error: bad.json:2: not a JSON scalar log line' in proc.stderr
    proc = run([osp.join(TOOLS, 'analyze_logs.py'), 'plot_curve', log, '--out', 'c.png'], tmp_path)
    assert proc.returncode == 0 and 'l: 1 points, last 1 at step 1' in proc.stdout
