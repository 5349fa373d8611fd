"""The TensorBoard snippet of docs/get_started.md, as written: a few iterations write TensorBoard events with
the training loss, beside mmengine's JSON log (which analyze_logs.py plots). Skipped only where tensorboard is
not installed; requirements/tests.txt installs it, so CI runs it."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

pytest.importorskip('tensorboard', reason='tensorboard is not installed (pip install -e ".[tensorboard]")')


def _marked_blocks(text):
    spec = importlib.util.spec_from_file_location('plugins_doc', osp.join(REPO, 'tests', 'docs',
                                                                          'test_plugins_doc.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.marked_blocks(text)


def test_documented_vis_backends_write_tensorboard_events(tmp_path):
    with open(osp.join(REPO, 'docs', 'get_started.md'), encoding='utf-8') as f:
        blocks = {target: body for kind, target, body in _marked_blocks(f.read()) if kind == 'File'}
    (tmp_path / 'tb_config.py').write_text(blocks['tb_config.py'])
    from lrfr.datasets.converters.demo import ensure_demo
    ensure_demo(str(tmp_path / 'data' / 'demo_tinyface'))
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]),
           'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'), 'tb_config.py', '--no-validate',
                           '--cfg-options', 'train_cfg.max_iters=3', 'default_hooks.logger.interval=1',
                           'default_hooks.checkpoint.interval=3'], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = list((tmp_path / 'work_dirs' / 'tb_config').glob('*/vis_data/events.out.tfevents.*'))
    assert len(events) == 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    assert 'loss' in acc.Tags()['scalars']
    assert [e.step for e in acc.Scalars('loss')] == [1, 2, 3]
    # The JSON log beside it holds the same losses, which analyze_logs.py plots.
    scalars = next((tmp_path / 'work_dirs' / 'tb_config').glob('*/vis_data/scalars.json'))
    plot = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'analysis_tools', 'analyze_logs.py'),
                           'plot_curve', str(scalars), '--keys', 'loss', '--out', 'loss.png'], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert plot.returncode == 0, plot.stderr[-3000:]
    assert 'tb_config: 3 points' in plot.stdout and (tmp_path / 'loss.png').is_file()
