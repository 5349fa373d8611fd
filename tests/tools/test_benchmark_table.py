"""benchmark_table.py: seeds grouped into rows, mean ± std, paired bootstrap intervals and verdicts."""
import importlib.util
import os.path as osp

import numpy as np
import pytest

from lrfr.evaluation.reporting import write_results_json

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_table', osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_table.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(tmp_path, name, seed, rank1, ap, first_rank, probes=None, **bench):
    """A results file as tools/test.py --out writes it; mAP and Rank-1 follow from the per-probe values."""
    ap = np.asarray(ap, dtype=np.float64)
    first_rank = np.asarray(first_rank)
    probes = list(range(ap.size)) if probes is None else probes
    metrics = {'tinyface/rank1': rank1, 'tinyface/rank20': 90.0 + seed, 'tinyface/rank50': 99.0,
               'tinyface/mAP': 100 * ap.mean()}
    per_probe = dict(probe_index=probes, probe_file=[None] * ap.size, label=[0] * ap.size, ap=ap.tolist(),
                     first_match_rank=first_rank.tolist(), valid=[True] * ap.size, mAP=ap.mean(),
                     ap_mode='official')
    path = tmp_path / f'{name}_{seed}.json'.replace(' ', '_')
    write_results_json(str(path), metrics, f'{name}.py', 'final.pth', seed=seed,
                       benchmark=dict(name=name, **bench), per_probe={'tinyface': per_probe})
    return str(path)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    base_ap = rng.uniform(0.1, 0.9, size=60)
    ranks = np.where(rng.uniform(size=60) < 0.5, 1, 5)
    return dict(
        base=[result(tmp_path, 'FR only', s, 40.0 + 2 * s, base_ap, ranks, row=1, baseline=True) for s in (0, 1)],
        # +0.05 AP on seed 0 and +0.15 on seed 1 on every probe: +10 points after averaging the seeds.
        better=[result(tmp_path, 'Better', s, 50.0 + 4 * s, base_ap + 0.05 + 0.1 * s, ranks, row=2)
                for s in (0, 1)],
        same=[result(tmp_path, 'Same', s, 40.0, base_ap, ranks, row=3) for s in (0, 1)],
        ref=[result(tmp_path, 'Untrained', s, 1.0, np.zeros(60), np.full(60, 9), row=0, reference=True)
             for s in (0, 1)])


def test_rows_mean_std_and_intervals(files, capsys):
    tool = load_tool()
    paths = files['better'] + files['base'] + files['same'] + files['ref']
    tool.main([*paths, '--markdown'])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert [line.split('|')[1].strip() for line in lines[2:6]] == [
        'Untrained', 'FR only (FR-only baseline)', 'Better', 'Same']  # benchmark.row order
    better = lines[4].split('|')
    assert better[2].strip() == '2'
    assert better[3].strip() == '52.0 ± 2.8'  # Rank-1 of seeds 50 and 54: sample std 2.83
    assert better[4].strip() == '90.5 ± 0.7'
    # Every probe gains exactly 10 AP points: the interval is that point.
    assert better[7].strip() == '+10.0 [+10.0, +10.0]'
    assert better[8].strip() == '+0.0 [+0.0, +0.0]'
    assert 'Better vs FR only: mAP +10.0 [+10.0, +10.0]: real (higher); Rank-1 +0.0 [+0.0, +0.0]: within noise' in out
    assert 'Same vs FR only: mAP +0.0 [+0.0, +0.0]: within noise' in out
    assert '- FR only beats the untrained reference (Untrained)' in out
    assert '- Better beats the untrained reference' in out
    assert 'Untrained does NOT beat' not in out  # the reference is not compared with itself


def test_seed_averaging_before_the_bootstrap(files):
    tool = load_tool()
    rows = tool.load_rows(files['better'])
    base = tool.load_rows(files['base'])[0]
    np.testing.assert_allclose(rows[0].per_probe['mAP'] - base.per_probe['mAP'], 10.0)


def test_baseline_by_name_and_bad_input(files, tmp_path, capsys):
    tool = load_tool()
    tool.main([*files['base'], *files['same'], '--baseline', 'Same'])
    assert 'FR only vs Same' in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--baseline 'Nope' is not a row"):
        tool.main([*files['base'], '--baseline', 'Nope'])
    other = result(tmp_path, 'Shifted', 0, 40.0, np.zeros(60), np.ones(60), probes=list(range(1, 61)), row=5)
    with pytest.raises(SystemExit, match='tested on different probes'):
        tool.main([*files['base'], other])
    twice = result(tmp_path, 'Second', 0, 40.0, np.zeros(60), np.ones(60), row=6, baseline=True)
    with pytest.raises(SystemExit, match='several rows say benchmark.baseline=True'):
        tool.main([*files['base'], twice])
    with pytest.raises(SystemExit, match='missing.json'):
        tool.main([str(tmp_path / 'missing.json')])


def test_results_without_per_probe_values_still_tabulate(tmp_path, capsys):
    tool = load_tool()
    a = write_results_json(str(tmp_path / 'a.json'), {'tinyface/rank1': 32.14, 'tinyface/rank20': 44.5,
                                                     'tinyface/rank50': 48.44, 'tinyface/mAP': 24.6},
                           'configs/centreface/cf_tinyface.py', 'cf.pth')
    tool.main([a, '--markdown'])
    out = capsys.readouterr().out
    assert '| cf_tinyface | 1 | 32.1 | 44.5 | 48.4 | 24.6 |' in out
    assert 'no FR-only baseline row' in out
