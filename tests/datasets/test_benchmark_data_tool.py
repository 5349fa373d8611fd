"""tools/analysis_tools/benchmark_data.py runs end to end on a tiny synthetic tree (files vs packed)."""
import importlib.util
import os.path as osp
import re
import sys

from lrfr.datasets import TinyFaceDataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_data.py')
    spec = importlib.util.spec_from_file_location('lrfr_benchmark_data_tool', path)
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
