"""run_benchmark.py: seeds, per-seed configs, progress, bad input, failing stages, --skip-existing.

The driver's logic runs against stand-in tools (a fake tools/train.py and tools/test.py that answer in
milliseconds), so these tests check the plumbing without training; tests/test_tools.py runs the real tools.
"""
import importlib.util
import io
import json
import os.path as osp
import textwrap

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

FAKE_TRAIN = '''
import argparse, os, sys
from mmengine.config import Config
p = argparse.ArgumentParser(); p.add_argument('config'); p.add_argument('--work-dir')
p.add_argument('--cfg-options', nargs='+')
a = p.parse_args()
cfg = Config.fromfile(a.config)
print('11/30 05:40:00 - mmengine - INFO - Iter(train) [ 2/4]  lr: 1e-2  eta: 0:00:03  time: 0.1  '
      'loss: 1.2500  loss_cls: 1.0')
if cfg.get('fail'):
    print('Traceback (most recent call last):')
    print('ValueError: broken on purpose')
    sys.exit(1)
with open(os.path.join(a.work_dir, 'final.pth'), 'w') as f:
    f.write(f"seed={cfg.randomness.seed} load_from={cfg.get('load_from')} options={a.cfg_options}")
with open(os.path.join(a.work_dir, 'threads.txt'), 'w') as f:
    f.write(os.environ.get('OMP_NUM_THREADS', 'unset') + ' ' + os.environ.get('MKL_NUM_THREADS', 'unset'))
'''

FAKE_TEST = '''
import argparse, json
from mmengine.config import Config
p = argparse.ArgumentParser(); p.add_argument('config'); p.add_argument('checkpoint', nargs='?')
p.add_argument('--random-init', action='store_true'); p.add_argument('--work-dir'); p.add_argument('--out')
p.add_argument('--no-plots', action='store_true'); p.add_argument('--cfg-options', nargs='+')
a = p.parse_args()
cfg = Config.fromfile(a.config)
if cfg.get('fail_test'):
    raise SystemExit('test broken on purpose')
s = cfg.randomness.seed
ap = [min(1.0, v + 0.01 * s) for v in cfg.fake_ap]
ranks = [1 if v > 0.5 else 3 for v in ap]
per = dict(probe_index=list(range(len(ap))), probe_file=[None] * len(ap), label=[0] * len(ap), ap=ap,
           first_match_rank=ranks, valid=[True] * len(ap), mAP=sum(ap) / len(ap), ap_mode='official')
metrics = {'tinyface/rank1': 100 * sum(r == 1 for r in ranks) / len(ap), 'tinyface/rank20': 100.0,
           'tinyface/rank50': 100.0, 'tinyface/mAP': 100 * per['mAP']}
json.dump(dict(metrics=metrics, config=a.config, checkpoint=a.checkpoint or 'random-init', date='', seed=s,
               benchmark=cfg.benchmark.to_dict(), per_probe={'tinyface': per}), open(a.out, 'w'))
'''


def load_driver():
    spec = importlib.util.spec_from_file_location(
        'run_benchmark', osp.join(REPO, 'tools', 'analysis_tools', 'run_benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def driver(tmp_path, monkeypatch):
    """The driver, pointed at stand-in tools, working in an empty folder with three configs."""
    fake = tmp_path / 'fake_repo' / 'tools'
    fake.mkdir(parents=True)
    (fake / 'train.py').write_text(FAKE_TRAIN)
    (fake / 'test.py').write_text(FAKE_TEST)
    module = load_driver()
    monkeypatch.setattr(module, 'REPO', str(tmp_path / 'fake_repo'))
    ws = tmp_path / 'ws'
    (ws / 'configs').mkdir(parents=True)
    monkeypatch.chdir(ws)
    write(ws, 'stage1', '')
    write(ws, 'fr', '''
        load_from = 'work_dirs/stage1/final.pth'
        fake_ap = [0.2, 0.4, 0.6, 0.8]
        benchmark = dict(name='FR', row=1, baseline=True)
        test_dataloader = dict()''')
    write(ws, 'joint', '''
        model = dict(sr=dict(init_cfg=dict(type='Pretrained', checkpoint='work_dirs/stage1/final.pth')))
        fake_ap = [0.3, 0.5, 0.7, 0.9]
        benchmark = dict(name='Joint', row=2)
        test_dataloader = dict()''')
    write(ws, 'untrained', '''
        fake_ap = [0.0, 0.0, 0.1, 0.0]
        benchmark = dict(name='Untrained', row=0, reference=True, train=False)
        test_dataloader = dict()''')
    return module


def write(ws, name, body):
    (ws / 'configs' / f'{name}.py').write_text(textwrap.dedent(body) + '\n')
    return f'configs/{name}.py'


CONFIGS = ['configs/joint.py', 'configs/fr.py', 'configs/untrained.py', 'configs/stage1.py']


def test_every_seed_reruns_the_chain_with_its_own_checkpoints(driver, capsys):
    driver.main([*CONFIGS, '--seeds', '2', '--jobs', '1', '--out', 'table.md', '--cfg-options',
                 'train_cfg.max_iters=4'])
    out = capsys.readouterr().out
    for seed in (0, 1):
        # The dumped per-seed config: its seed, and the earlier stage of the same seed.
        cfg = Config.fromfile(f'work_dirs/fr/seed{seed}/fr.py')
        assert cfg.randomness.seed == seed and cfg.load_from == f'work_dirs/stage1/seed{seed}/final.pth'
        joint = Config.fromfile(f'work_dirs/joint/seed{seed}/joint.py')
        assert joint.model.sr.init_cfg.checkpoint == f'work_dirs/stage1/seed{seed}/final.pth'
        trained = open(f'work_dirs/fr/seed{seed}/final.pth').read()
        assert trained == (f"seed={seed} load_from=work_dirs/stage1/seed{seed}/final.pth "
                           "options=['train_cfg.max_iters=4']")
        assert not osp.exists(f'work_dirs/untrained/seed{seed}/final.pth')  # train=False: tested only
        assert json.load(open(f'work_dirs/untrained/seed{seed}/results.json'))['checkpoint'] == 'random-init'
    assert 'stage 1/8 stage1 seed 0' in out and 'stage 8/8' in out
    assert 'stage 2/8 joint seed 0: running, log work_dirs/joint/seed0/train.log' in out
    assert 'stage 3/8 fr seed 0: train iter 2/4, loss 1.2500, eta 0:00:03' in out  # first live line (not a TTY)
    table = open('table.md').read()
    assert '| Joint | 2 |' in table and '| FR (FR-only baseline) | 2 |' in table
    assert 'Joint beats the untrained reference' in table
    assert 'total time:' in out and 'table written to table.md' in out


def test_seed_chains_side_by_side_give_the_same_results(driver, capsys):
    """--jobs 2: the two seeds' chains run at once, each in dependency order, each child pinned to --threads;
    the checkpoints and the table are those of one chain after the other."""
    driver.main([*CONFIGS, '--seeds', '2', '--jobs', '1', '--out', 'serial.md', '--cfg-options',
                 'train_cfg.max_iters=4'])
    serial = {seed: open(f'work_dirs/joint/seed{seed}/final.pth').read() for seed in (0, 1)}
    driver.main([*CONFIGS, '--seeds', '2', '--jobs', '2', '--threads', '3', '--out', 'parallel.md',
                 '--cfg-options', 'train_cfg.max_iters=4'])
    out = capsys.readouterr().out
    for seed in (0, 1):
        assert open(f'work_dirs/joint/seed{seed}/final.pth').read() == serial[seed]
        assert open(f'work_dirs/fr/seed{seed}/threads.txt').read() == '3 3'
    strip = [line for line in open('serial.md').read().splitlines() if 'total time' not in line]
    assert strip == [line for line in open('parallel.md').read().splitlines() if 'total time' not in line]
    assert '2 at a time, 3 thread(s) each' in out


def test_threads_and_jobs_must_be_positive(driver):
    for flag in ('--jobs', '--threads'):
        with pytest.raises(SystemExit, match=f'run_benchmark: {flag} must be at least 1, got 0'):
            driver.main([*CONFIGS, flag, '0'])


def test_skip_existing_reuses_completed_stages_per_seed(driver, capsys):
    driver.main(['configs/stage1.py', 'configs/fr.py', '--seeds', '1'])
    capsys.readouterr()
    driver.main(['configs/stage1.py', 'configs/fr.py', '--seeds', '2', '--skip-existing'])
    out = capsys.readouterr().out
    assert 'stage 1/4 stage1 seed 0: done before, reused' in out
    assert 'stage 2/4 fr seed 0: done before, reused' in out
    assert 'stage 3/4 stage1 seed 1: trained' in out


@pytest.mark.parametrize('seeds', ['0', '-2'])
def test_bad_seed_count(driver, seeds):
    with pytest.raises(SystemExit, match=f'^run_benchmark: --seeds must be at least 1, got {seeds}$'):
        driver.main([*CONFIGS, '--seeds', seeds])


def test_configs_without_rows(driver, tmp_path):
    with pytest.raises(SystemExit, match=r'none of the 1 configs \(stage1\) declares a table row'):
        driver.main(['configs/stage1.py'])
    no_test = write(tmp_path / 'ws', 'no_test', "benchmark = dict(name='X', row=1)")
    with pytest.raises(SystemExit, match='configs/no_test.py declares a table row .* but has no test_dataloader'):
        driver.main([no_test])
    with pytest.raises(SystemExit, match='config not found: configs/nope.py'):
        driver.main(['configs/nope.py'])


def test_missing_earlier_stage_is_named(driver):
    with pytest.raises(SystemExit, match=r'configs/fr.py starts from work_dirs/stage1/final.pth.*seed 0'):
        driver.main(['configs/fr.py'])


def test_failing_stage_one_line_then_resume(driver, tmp_path, capsys):
    bad = write(tmp_path / 'ws', 'broken', '''
        load_from = 'work_dirs/stage1/final.pth'
        fail = True
        fake_ap = [0.1, 0.1, 0.1, 0.1]
        benchmark = dict(name='Broken', row=3)
        test_dataloader = dict()''')
    with pytest.raises(SystemExit) as err:
        driver.main([*CONFIGS, bad, '--seeds', '1'])
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith('run_benchmark: stage ')
    assert ' broken seed 0 failed (exit 1, config configs/broken.py): ' in message
    assert message.endswith('ValueError: broken on purpose; full log: work_dirs/broken/seed0/train.log')
    assert osp.isfile('work_dirs/fr/seed0/results.json')  # the stages done before it are kept
    with pytest.raises(RuntimeError, match='broken on purpose'):  # --debug: the exception itself
        driver.main([*CONFIGS, bad, '--seeds', '1', '--skip-existing', '--debug'])
    capsys.readouterr()
    (tmp_path / 'ws' / bad).write_text((tmp_path / 'ws' / bad).read_text().replace('fail = True', 'fail = False'))
    driver.main([*CONFIGS, bad, '--seeds', '1', '--skip-existing'])
    out = capsys.readouterr().out
    assert 'fr seed 0: done before, reused' in out and 'broken seed 0: trained' in out


def test_failing_test_keeps_the_training(driver, tmp_path, capsys):
    path = tmp_path / 'ws' / write(tmp_path / 'ws', 'fr', '''
        load_from = 'work_dirs/stage1/final.pth'
        fail_test = True
        fake_ap = [0.2, 0.4, 0.6, 0.8]
        benchmark = dict(name='FR', row=1, baseline=True)
        test_dataloader = dict()''')
    with pytest.raises(SystemExit, match=r'fr seed 0 \[test\] failed .*: test broken on purpose; full log: '
                                         r'work_dirs/fr/seed0/test.log$'):
        driver.main(['configs/stage1.py', 'configs/fr.py', '--seeds', '1'])
    trained = open('work_dirs/fr/seed0/final.pth').read()
    path.write_text(path.read_text().replace('fail_test = True', 'fail_test = False'))
    capsys.readouterr()
    driver.main(['configs/stage1.py', 'configs/fr.py', '--seeds', '1', '--skip-existing'])
    assert 'stage 2/2 fr seed 0: training reused, tested in' in capsys.readouterr().out
    assert open('work_dirs/fr/seed0/final.pth').read() == trained


def test_progress_line_every_interval_when_not_a_terminal(driver):
    now = [0.0]
    stream = io.StringIO()
    progress = driver.Progress(stream, interval=10.0, clock=lambda: now[0])
    for t in (0.0, 4.0, 9.9, 10.0, 15.0, 20.5):
        now[0] = t
        progress.status(f'at {t}')
    progress.line('done')
    progress.status('next')
    assert stream.getvalue().splitlines() == ['at 0.0', 'at 10.0', 'at 20.5', 'done', 'next']


def test_progress_line_is_rewritten_on_a_terminal(driver):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    progress = driver.Progress(stream)
    progress.status('stage 1/2 long text')
    progress.status('short')
    progress.line('stage 1/2 done')
    assert stream.getvalue() == ('\rstage 1/2 long text' + '\rshort' + ' ' * 14 + '\r' + ' ' * 5 + '\r'
                                 'stage 1/2 done\n')


def test_parse_progress_reads_mmengine_lines(driver):
    line = ('11/30 05:40:00 - mmengine - INFO - Iter(train) [150/300]  base_lr: 5.0000e-02 lr: 5.0000e-02  '
            'eta: 0:00:12  time: 0.0812  data_time: 0.0040  memory: 0  grad_norm: 3.1  loss: 2.3456  '
            'loss_cls: 2.0000')
    assert driver.parse_progress(line) == dict(phase='train', iter='150', total='300', eta='0:00:12',
                                               loss='2.3456')
    assert driver.parse_progress('Iter(test) [ 3/10]    eta: 0:00:01') == dict(phase='test', iter='3',
                                                                               total='10', eta='0:00:01')
    assert driver.parse_progress('loss: 3 but no iteration') is None
