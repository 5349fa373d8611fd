"""tools/analysis_tools/benchmark_eval.py runs end to end at a tiny scale and lrfr agrees with the reference."""
import json
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_benchmark_eval_tiny(tmp_path):
    out = tmp_path / 'bench.json'
    tool = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_eval.py')
    proc = subprocess.run([sys.executable, tool, '--scale', '0.01', '--dim', '16', '--repeat', '1',
                           '--threads', '1', '--json', str(out)],
                          capture_output=True, text=True, check=True)
    assert 'lrfr / GEMM' in proc.stdout and 'lrfr / reference' in proc.stdout
    figures = json.loads(out.read_text())
    for mode in ('official', 'exact'):  # same numbers as the sort-based reference
        assert figures[mode]['max_abs_diff'] == 0.0
        assert figures[mode]['lrfr_s'] > 0
    assert figures['gemm_s'] > 0
