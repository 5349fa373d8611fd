"""tools/analysis_tools/check_stability.py: spike statistics by hand, config rewriting, a real two-stage chain."""
import importlib.util
import json
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'configs' / 'demo'
CSRI = REPO / 'configs' / 'csri' / 'csri_vdsr-centreface_1xb256_celeba-tinyface.py'


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'check_stability', REPO / 'tools' / 'analysis_tools' / 'check_stability.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spike_stats_by_hand(tool):
    flat = [2.0] * 30
    stats = tool.spike_stats(flat, smooth=5, window=10, skip=10)
    assert stats['first'] == 2.0 and stats['final'] == 2.0 and stats['max'] == 2.0
    assert stats['max_ratio'] == pytest.approx(1.0) and stats['argmax'] == 1
    spiky = [1.0] * 20 + [1.0, 1.0, 1.0, 1.0, 11.0] + [1.0] * 5
    stats = tool.spike_stats(spiky, smooth=5, window=10, skip=10)
    # the window ending at iteration 25 holds four 1.0 and the 11.0: mean 3.0 over a median of 1.0
    assert stats['max_ratio'] == pytest.approx(3.0) and stats['ratio_at'] == 25
    assert stats['max'] == 11.0 and stats['argmax'] == 25
    falling = [10.0 / (i + 1) for i in range(40)]
    assert tool.spike_stats(falling, smooth=5, window=10, skip=10)['max_ratio'] < 1.0
    assert tool.spike_stats([1.0, math.nan, 2.0], smooth=1, window=1, skip=0)['max'] == 2.0


def test_retarget_celeba_to_the_demo_hr_folder_and_tinyface_in_place(tool):
    pipeline = [dict(type='LoadFaceImage')]
    concat = dict(type='ConcatDataset', datasets=[
        dict(type='CelebADataset', data_root='data/celeba', split='all', branch='syn', pipeline=pipeline),
        dict(type='TinyFaceDataset', data_root='data/tinyface', split='train', branch='nat', pipeline=pipeline)])
    out = tool.retarget(concat, '/demo')
    assert out['datasets'][0] == dict(type='DemoHRFaceDataset', data_root='/demo', pipeline=pipeline, branch='syn')
    assert out['datasets'][1]['data_root'] == '/demo' and out['datasets'][1]['split'] == 'train'
    with pytest.raises(KeyError, match="no demo stand-in for dataset type 'LFWDataset'"):
        tool.retarget(dict(type='LFWDataset'), '/demo')


def test_relink_maps_or_drops_checkpoint_references(tool):
    model = dict(type='SRFaceRecognizer', sr=dict(type='VDSR', init_cfg=dict(
        type='Pretrained', checkpoint='work_dirs/vdsr_x/final.pth', prefix='sr.')))
    missing = []
    linked = tool.relink(model, {'vdsr_x': '/runs/vdsr_x/iter_5.pth'}, missing)
    assert linked['sr']['init_cfg']['checkpoint'] == '/runs/vdsr_x/iter_5.pth' and missing == []
    dropped = tool.relink(model, {}, missing)
    assert 'init_cfg' not in dropped['sr'] and missing == ['vdsr_x']


def test_make_config_scales_sgd_lr_to_the_batch_and_chains_the_same_seed(tool, tmp_path):
    args = tool.parse_args([str(CSRI), '--batch-size', '16', '--iters', '7', '--work-dir', str(tmp_path)])
    joint = 'sr-fr-joint_vdsr-centreface_1xb256_celeba-pairs'
    cfg, missing = tool.make_config(str(CSRI), 2, args, {joint: '/runs/joint.pth'})
    assert cfg.load_from == '/runs/joint.pth' and missing == []
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.01 * 16 / 256)
    assert cfg.train_dataloader.batch_size == cfg.train_dataloader.sampler.batch_size == 16
    assert cfg.train_cfg.max_iters == 7 and cfg.randomness.seed == 2 and cfg.val_cfg is None
    assert cfg.train_dataloader.num_workers == 0
    cfg, missing = tool.make_config(str(CSRI), 0, args, {})
    assert cfg.load_from is None and missing == [joint]


def test_order_by_dependency_puts_producers_first(tool):
    paths = [str(DEMO / 'csri_vdsr-centreface_1xb32_demo-pairs-native.py'),
             str(DEMO / 'sr-fr-joint_vdsr-centreface_1xb32_demo-pairs.py')]
    assert tool.order_by_dependency(paths) == paths[::-1]


@pytest.mark.parametrize('argv, match', [(['--seeds', '0'], '--seeds must be >= 1, got 0'),
                                         (['--iters', '-2'], '--iters must be >= 1, got -2')])
def test_bad_arguments(tool, capsys, argv, match):
    with pytest.raises(SystemExit):
        tool.parse_args([str(CSRI), *argv])
    assert match in capsys.readouterr().err


def test_a_two_stage_demo_chain_runs_and_reports(tool, tmp_path, capsys):
    out = tmp_path / 'records.json'
    records = tool.main([str(DEMO / 'centreface_1xb32_demo-hr-native.py'), str(DEMO / 'centreface_1xb32_demo-hr.py'),
                         '--seeds', '1', '--first-seed', '5', '--iters', '4', '--batch-size', '8',
                         '--work-dir', str(tmp_path / 'runs'),
                         '--data-root', str(REPO / 'data' / 'demo_tinyface'), '--out', str(out)])
    by_name = {r['config']: r for r in records}
    assert by_name['centreface_1xb32_demo-hr']['start'] == 'config'  # nothing to load
    assert by_name['centreface_1xb32_demo-hr-native']['start'] == 'config'  # from the seed's pre-training
    assert all(r['status'] == 'ok' and r['iters'] == 4 and len(r['losses']) == 4 and r['seed'] == 5
               for r in records)
    assert by_name['centreface_1xb32_demo-hr']['lr'] == pytest.approx(0.0125 * 8 / 32)
    assert json.loads(out.read_text())[0]['config'] == 'centreface_1xb32_demo-hr-native'  # command-line order
    assert '| centreface_1xb32_demo-hr | 5 | 8 |' in capsys.readouterr().out

    # --skip-existing: both finished runs come back from the JSON without training; another length is not reused
    argv = [str(DEMO / 'centreface_1xb32_demo-hr-native.py'), str(DEMO / 'centreface_1xb32_demo-hr.py'),
            '--seeds', '1', '--first-seed', '5', '--batch-size', '8', '--work-dir', str(tmp_path / 'runs'),
            '--data-root', str(REPO / 'data' / 'demo_tinyface'), '--out', str(out), '--skip-existing']

    def no_training(path, *args):
        raise AssertionError(f'{path} trained again')
    tool_run_one, tool.run_one = tool.run_one, no_training
    try:
        again = tool.main(argv + ['--iters', '4'])
        assert [r['final'] for r in again] == [r['final'] for r in records]
        with pytest.raises(AssertionError, match='trained again'):
            tool.main(argv + ['--iters', '5'])
    finally:
        tool.run_one = tool_run_one


def test_stages_of_an_earlier_invocation_are_found_in_the_work_dir(tool, tmp_path):
    earlier = tmp_path / 'vdsr_x' / 'seed1' / 'iter_30.pth'
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b'')
    runs = tool.EarlierRuns(str(tmp_path), seed=1, iters=30)
    runs['joint_y'] = '/this/invocation.pth'
    assert runs['joint_y'] == '/this/invocation.pth' and runs['vdsr_x'] == str(earlier)
    assert 'vdsr_x' in runs and 'other' not in runs and runs.get('other') is None
    assert 'vdsr_x' not in tool.EarlierRuns(str(tmp_path), seed=2, iters=30)  # another seed's
    assert 'vdsr_x' not in tool.EarlierRuns(str(tmp_path), seed=1, iters=None)  # length unknown: not reused


def test_clip_stats_and_table_report_each_clipped_part(tool):
    """A PartClipOptimWrapper run reports the rest's norms in the main columns and each part's in `parts`."""
    from types import SimpleNamespace
    wrapper = SimpleNamespace(clip_grad_kwargs=dict(max_norm=40.0), part_clip=dict(sr=dict(max_norm=10.0)))
    stats = tool.clip_stats(wrapper, {'grad_norm': [12.0, 50.0, 20.0, 30.0],
                                      'grad_norm_sr': [700.0, 9.0, 11.0, 3.0]})
    assert stats == {'grad_norm': dict(max=50.0, clipped=0.25), 'grad_norm_sr': dict(max=700.0, clipped=0.5)}
    record = dict(config='joint', seed=0, batch=4, lr=0.1, start='config', iters=4, first=3.0, final=2.0, max=3.0,
                  argmax=1, max_ratio=1.0, ratio_at=4, max_grad_norm=50.0, clipped=0.25,
                  part_grads={'grad_norm_sr': stats['grad_norm_sr']}, status='ok')
    text = tool.table([record])
    assert '| parts: max norm, clipped |' in text.splitlines()[0]
    assert '| 50 | 25 % | sr 700, 50 % | ok |' in text.splitlines()[2]


def test_recordio_and_absent_public_checkpoints_get_stand_ins(tool, tmp_path):
    """An IResNet config reads the demo folder at 112x112 and starts from scratch without its converted model."""
    dataset = tool.retarget(dict(type='MXFaceDataset', data_root='data/ms1m', branch='syn',
                                 pipeline=[dict(type='LoadFaceImage'), dict(type='PackFaceInputs')]), 'demo')
    assert dataset == dict(type='DemoHRFaceDataset', data_root='demo', branch='syn',
                           pipeline=[dict(type='LoadFaceImage'), dict(type='ResizeFace', size=(112, 112)),
                                     dict(type='PackFaceInputs')])
    missing = []
    node = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'absent.pth'))))
    assert tool.relink(node, {}, missing) == dict(backbone=dict())
    assert missing == [str(tmp_path / 'absent.pth')]


def test_a_bump_near_zero_is_not_a_spike_a_lost_progress_is(tool):
    """Loss 9 -> 0.2 then a 5-iteration mean of 1.2 (6x the median, 11 % of the progress): a bump; back to 5: SPIKE."""
    fitted = [9.0] * 5 + [0.2] * 60
    bump = tool.spike_stats(fitted + [1.2] * 5 + [0.2] * 5)
    assert bump['max_ratio'] == pytest.approx(6.0) and bump['max_rise'] == pytest.approx(1.0 / 8.8)
    assert tool.status_of(bump, False, 2.0, 0.25) == 'ok (bump: 11 % of the progress)'
    lost = tool.spike_stats(fitted + [5.0] * 5)
    assert lost['max_rise'] == pytest.approx(4.8 / 8.8)
    assert tool.status_of(lost, False, 2.0, 0.25) == 'SPIKE (55 % of the progress)'
    assert tool.status_of(lost, True, 2.0, 0.25) == 'DIVERGED'
    assert tool.status_of(tool.spike_stats(fitted), False, 2.0, 0.25) == 'ok'


def test_summary_has_one_row_per_config(tool):
    runs = [dict(config='a', seed=s, final=f, max_ratio=m, status=st)
            for s, f, m, st in ((0, 0.5, 1.01, 'ok'), (1, 0.25, 3.0, 'ok (bump: 10 % of the progress)'))]
    row = tool.summary(runs).splitlines()[2]
    assert row == '| a | 0,1 | 0.5 / 0.25 | 1.01 / 3.00 | ok; ok (bump: 10 % of the progress) |'


def test_a_never_trained_reference_is_skipped(tool, capsys, tmp_path):
    untrained = DEMO / 'centreface_1xb32_demo-untrained.py'
    assert tool.main([str(untrained), '--work-dir', str(tmp_path)]) == []
    assert f'skipping {untrained} (benchmark.train=False' in capsys.readouterr().out
