"""Reports: plots, official .mat export, results JSON, and the benchmark table tool."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
from scipy.io import loadmat

from lrfr.evaluation.functional import evaluate_identification
from lrfr.evaluation.reporting import (export_mat, find_metric, load_results_json, make_table,
                                       plot_cmc, plot_pr, write_per_probe_json,
                                       write_results_json)
from lrfr.structures import DISTRACTOR_LABEL

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', 'analysis_tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_result(seed=0, ap_mode='official'):
    rng = np.random.default_rng(seed)
    gallery_lbl = np.concatenate([np.arange(5), np.full(40, DISTRACTOR_LABEL)])
    return evaluate_identification(rng.normal(size=(5, 4)), np.arange(5), rng.normal(size=(45, 4)),
                                   gallery_lbl, ap_mode=ap_mode)


def test_plots_are_written(tmp_path):
    res = small_result()
    for path in (plot_cmc(res, str(tmp_path / 'cmc.png')),
                 plot_pr(res, str(tmp_path / 'sub' / 'pr.png')),
                 plot_cmc({'A': res, 'B': small_result(1, 'exact')}, str(tmp_path / 'both.png'))):
        with open(path, 'rb') as f:
            assert f.read(8) == PNG_MAGIC
    with pytest.raises(TypeError, match='evaluate_identification'):
        plot_cmc({'A': {'rank1': 0.3}}, str(tmp_path / 'bad.png'))


def test_export_mat_official_layout(tmp_path):
    rng = np.random.default_rng(2)
    probe = rng.normal(size=(3, 4)).astype(np.float32)
    gallery = rng.normal(size=(7, 4)).astype(np.float32)
    labels = np.array([1, 2, 3, 1, DISTRACTOR_LABEL, DISTRACTOR_LABEL, DISTRACTOR_LABEL])
    paths = export_mat(str(tmp_path), probe, gallery, labels)
    assert sorted(osp.basename(p) for p in paths.values()) == ['distractor.mat', 'gallery.mat',
                                                               'probe.mat']
    np.testing.assert_array_equal(loadmat(paths['probe'])['probe_feature_map'], probe)
    np.testing.assert_array_equal(loadmat(paths['gallery'])['gallery_feature_map'], gallery[:4])
    np.testing.assert_array_equal(loadmat(paths['distractor'])['distractor_feature_map'],
                                  gallery[4:])
    assert loadmat(paths['probe'])['probe_feature_map'].dtype == np.float32
    with pytest.warns(UserWarning, match='interleaved'):
        export_mat(str(tmp_path / 'x'), probe, gallery, labels[::-1].copy())
    with pytest.raises(ValueError, match='gallery labels'):
        export_mat(str(tmp_path), probe, gallery, labels[:3])


def test_results_json_roundtrip_and_table_tool(tmp_path, capsys):
    metrics = {'tinyface/rank1': np.float64(32.14), 'tinyface/rank20': 44.5,
               'tinyface/rank50': 48.44, 'tinyface/mAP': 24.6}
    a = write_results_json(str(tmp_path / 'a.json'), metrics, 'configs/centreface/cf_tinyface.py',
                           'cf.pth')
    record = load_results_json(a)
    assert set(record) == {'metrics', 'config', 'checkpoint', 'date'}
    assert record['metrics']['tinyface/rank1'] == 32.14
    assert find_metric(record['metrics'], 'mAP') == 24.6
    with pytest.raises(KeyError, match='rank5'):
        find_metric(record['metrics'], 'rank5')
    b = tmp_path / 'b.json'
    b.write_text(json.dumps(dict(metrics={'tinyface/rank1': 44.8, 'tinyface/rank20': 60.4,
                                          'tinyface/rank50': 65.1, 'tinyface/mAP': 36.2},
                                 config='csri.py', checkpoint=None, date='')))
    tool = load_tool('benchmark_table')
    tool.main([a, str(b), '--markdown'])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == '| Method | Seeds | Rank-1 (%) | Rank-20 (%) | Rank-50 (%) | mAP (%) |'
    assert '| cf_tinyface | 1 | 32.1 | 44.5 | 48.4 | 24.6 |' in out
    assert '| csri | 1 | 44.8 | 60.4 | 65.1 | 36.2 |' in out
    tool.main([a, '--names', 'CentreFace'])
    ascii_out = capsys.readouterr().out
    assert 'CentreFace' in ascii_out and '+---' in ascii_out
    with pytest.raises(SystemExit, match='missing.json'):
        tool.main([str(tmp_path / 'missing.json')])
    with pytest.raises(SystemExit, match='--names'):
        tool.main([a, str(b), '--names', 'only-one'])


def test_per_probe_json_matches_the_result(tmp_path):
    res = small_result(4)
    path = write_per_probe_json(str(tmp_path / 'pp.json'), res, [10, 11, 12, 13, 14], [0, 1, 2, 3, 4],
                                [f'p{i}.jpg' for i in range(5)])
    record = json.loads(open(path).read())
    assert record['probe_index'] == [10, 11, 12, 13, 14] and record['probe_file'][2] == 'p2.jpg'
    np.testing.assert_allclose(record['ap'], res['ap'])
    assert record['first_match_rank'] == res['first_match_rank'].tolist()
    assert np.mean(record['ap']) == pytest.approx(res['mAP'])
    assert np.mean(np.array(record['first_match_rank']) == 1) == pytest.approx(res['rank1'])
    with pytest.raises(ValueError, match='write_per_probe_json: 2 indices, 5 labels and 5 files for 5 probes'):
        write_per_probe_json(str(tmp_path / 'bad.json'), res, [0, 1], [0] * 5)
    extra = load_results_json(write_results_json(str(tmp_path / 'r.json'), {'x/mAP': 1.0}, 'c.py', None,
                                                 seed=3, per_probe={'x': record}))
    assert extra['seed'] == 3 and extra['per_probe']['x']['ap'] == record['ap']


def test_make_table_markdown():
    md = make_table(['Method', 'mAP'], [['X', '1.0']], markdown=True)
    assert md.splitlines() == ['| Method | mAP |', '| --- | ---: |', '| X | 1.0 |']
