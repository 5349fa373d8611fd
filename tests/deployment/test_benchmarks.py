"""The benchmark tools run end to end at toy size and report what docs/benchmark.md quotes."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run(tool, *args):
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, osp.join(REPO, tool), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_gallery_benchmark_reports_latency_memory_and_recall(tmp_path):
    pytest.importorskip('faiss')
    out = tmp_path / 'gallery.json'
    run('tools/analysis_tools/benchmark_gallery.py', '--gallery-size', '5000', '--dim', '32', '--queries', '50',
        '--identities', '500', '--nlist', '16', '--nprobe', '1', '16', '--single', '3', '--threads', '1',
        '--out', str(out))
    data = json.loads(out.read_text())
    rows = {(r['backend'], r.get('nprobe')): r for r in data['results']}
    assert list(rows) == [('faiss-flat', None), ('torch', None), ('faiss-ivf', 1), ('faiss-ivf', 16)]
    assert rows['faiss-flat', None]['recall_at_1_vs_exact'] == 1.0
    assert rows['torch', None]['recall_at_1_vs_exact'] >= 0.98  # exact too (float rounding may swap near-ties)
    assert rows['faiss-ivf', 16]['recall_at_1_vs_exact'] >= 0.98  # nprobe = nlist: every cell is visited
    assert rows['faiss-ivf', 1]['recall_at_1_vs_exact'] < rows['faiss-ivf', 16]['recall_at_1_vs_exact']
    for row in rows.values():
        assert row['batch_ms_per_query'] > 0 and row['peak_rss_gib'] >= row['data_rss_gib'] > 0
    assert data['setup']['gallery_size'] == 5000


def test_export_benchmark_reports_both_runtimes(tmp_path):
    pytest.importorskip('onnxruntime')
    out = tmp_path / 'export.json'
    proc = run('tools/deployment/benchmark_export.py',
               osp.join('configs', 'demo', 'csri_vdsr-centreface_1xb32_demo-pairs-native.py'), '--random-init',
               '--batch-sizes', '2', '--seconds', '0.2', '--threads', '1', '--out', str(out))
    row = json.loads(out.read_text())['results'][0]
    assert row['batch'] == 2 and row['max_abs_diff'] <= 1e-4
    assert row['torch_eager_per_s'] > 0 and row['onnxruntime_per_s'] > 0
    assert 'onnxruntime' in proc.stdout
