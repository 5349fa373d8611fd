"""tools/analysis_tools/benchmark_data.py runs end to end on a tiny synthetic tree (files vs packed)."""
import importlib.util
import os.path as osp
import re
import sys

from lrfr.datasets import TinyFaceDataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool(name: str = 'benchmark_data'):
    """tools/analysis_tools/<name>.py as a module."""
    path = osp.join(REPO, 'tools', 'analysis_tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'lrfr_{name}_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_tree_is_tinyface_shaped(tmp_path):
    root = _load_tool().make_synthetic_tinyface(str(tmp_path / 'tf'), 7)
    ds = TinyFaceDataset(root, split='train')
    assert len(ds) == 7 and ds.metainfo['num_classes'] == 3  # 3 images per identity
    assert ds.get_gt_labels().tolist() == [0, 0, 0, 1, 1, 1, 2]


def test_benchmark_prints_both_sources(tmp_path, monkeypatch, capsys):
    tool = _load_tool()
    monkeypatch.setattr(sys, 'argv', ['benchmark_data.py', '--num-images', '12', '--repeat', '1',
                                      '--cold', '--work-dir', str(tmp_path)])
    tool.main()
    out = capsys.readouterr().out
    assert 'images: 12 (synthetic)' in out
    for row in ('full pipeline', 'loading only'):
        # files, packed, packed/files, RecordIO, RecordIO/files
        assert re.search(rf'\| {row} *\| +\d+ \| +\d+ \| +[\d.]+x \| +\d+ \| +[\d.]+x \|', out), out


# --- tools/analysis_tools/benchmark_pipeline.py: per-stage, per-worker cost of the CSRI pipelines ---------------
def _load_pipeline_tool():
    return _load_tool('benchmark_pipeline')


def test_synthetic_celeba_tree_is_celeba_shaped(tmp_path):
    import cv2

    from lrfr.datasets import CelebADataset
    root = _load_pipeline_tool().make_synthetic_celeba(str(tmp_path / 'celeba'), 25)
    ds = CelebADataset(root, split='all')
    assert len(ds) == 25 and ds.metainfo['num_classes'] == 2  # 20 images per identity
    assert cv2.imread(ds.get_data_info(0)['img_path']).shape == (218, 178, 3)  # CelebA's aligned size


def test_workers_needed_adds_the_branches_times():
    need = _load_pipeline_tool().workers_needed(2700, {'syn': 0.5, 'nat': 0.5}, {'syn': 1350, 'nat': 2700})
    assert need == {'syn': 1.0, 'nat': 0.5, 'together': 1.5}


def test_pipeline_benchmark_all_variants_in_process(tmp_path, capsys):
    tool = _load_pipeline_tool()
    report = tool.main(['--num-syn', '6', '--num-nat', '6', '--repeat', '1', '--batch-size', '4', '--no-loader',
                        '--random-lr', '--batched', '--work-dir', str(tmp_path), '--json', str(tmp_path / 'r.json')])
    out = capsys.readouterr().out
    assert set(report['variants']) == {'syn', 'syn, LR 6-32 px', 'syn, batched', 'nat', 'nat, batched'}
    # each transform of the config's pipelines is a row, for files / packed / RecordIO
    for stage in ('LoadFaceImage', 'CenterCrop', 'BicubicDownsample', 'ResizeFace', 'PackFaceInputs'):
        assert re.search(rf'\| {stage} \| \d+ \(\d+ %\) \| \d+ \(\d+ %\) \| \d+ \(\d+ %\) \|', out), stage
    assert 'the batched resizes in FaceDataPreprocessor' in out
    assert re.search(r'\| img/s, in-process, by CPU time \| \d+ \| \d+ \| \d+ \|', out)
    rates = report['variants']
    need = report['workers']['syn + nat / packed']['in_process']
    assert abs(need['syn'] - 1350 / rates['syn']['in_process']['packed']) < 1e-9
    assert abs(need['together'] - need['syn'] - need['nat']) < 1e-9
    assert 'syn, batched + nat, batched / rec' in report['workers']
    assert osp.exists(tmp_path / 'r.json')


def test_pipeline_benchmark_through_a_worker(tmp_path, capsys):
    tool = _load_pipeline_tool()
    tool.main(['--num-syn', '4', '--num-nat', '4', '--repeat', '1', '--batch-size', '2', '--sources', 'packed',
               '--work-dir', str(tmp_path)])
    out = capsys.readouterr().out
    for collate in ('pseudo_collate', 'face_collate'):
        assert re.search(rf'\| img/s, DataLoader 1 worker, {collate} \| \d+ \|', out), out
        assert re.search(rf'\| img/s per worker CPU second, {collate} \| \d+ \|', out), out
    assert re.search(r'\| syn \+ nat \| packed \| [\d.]+ \| [\d.]+ \| [\d.]+ \(= \d+\) \| [\d.]+ \| [\d.]+ \|', out)


def test_pipeline_benchmark_bad_input(tmp_path):
    import pytest
    tool = _load_pipeline_tool()
    with pytest.raises(ValueError, match='has no BicubicDownsample step to vary'):
        tool.with_transform_args([dict(type='LoadFaceImage')], 'cfg.py', ['BicubicDownsample'], batched=True)
    with pytest.raises(KeyError, match='cfg.py: no train_dataloader.dataset'):
        tool.branch_datasets(dict(), 'cfg.py')
    with pytest.raises(SystemExit):
        tool.parse_args(['--num-syn', '0'])


def test_process_cpu_seconds_reads_this_process():
    import os
    import time
    tool = _load_pipeline_tool()
    start = time.process_time()
    while time.process_time() - start < 0.2:  # burn 0.2 s of CPU so the tick counter moves
        pass
    # /proc counts in clock ticks (10 ms): the two clocks agree to a few ticks
    assert abs(tool.process_cpu_seconds(os.getpid()) - time.process_time()) < 0.05
