"""docs/plugins.md runs as written: its files are copied from the page and its commands run verbatim in a
temporary folder outside the checkout (only ``LRFR``, the checkout's path, is set, as the page says).

The page marks what to run: a line ``File `<path>`:`` before a fenced block gives that block's file, a line
``Run in `<folder>`:`` before a ``bash`` block gives commands run there, one by one.
"""
import os
import os.path as osp
import re
import subprocess
import sys
from typing import List, Tuple

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = osp.join(REPO, 'docs', 'plugins.md')

_BLOCK = re.compile(r'^(File|Run in) `([^`]+)`:\n\n```(\w*)\n(.*?)^```$', re.M | re.S)


def marked_blocks(text: str) -> List[Tuple[str, str, str]]:
    """``(kind, target, body)`` for every marked fenced block of a Markdown page, in page order: kind
    ``'File'`` (target: the file to write) or ``'Run in'`` (target: the folder; body: bash commands)."""
    return [(kind, target, body) for kind, target, _, body in _BLOCK.findall(text)]


def test_marked_blocks_parser():
    text = 'x\nFile `a/b.py`:\n\n```python\nprint(1)\n```\n\nRun in `a`:\n\n```bash\npython b.py\n```\n'
    assert marked_blocks(text) == [('File', 'a/b.py', 'print(1)\n'), ('Run in', 'a', 'python b.py\n')]
    assert marked_blocks('```python\nunmarked\n```\n') == []


def test_plugin_page_runs_verbatim(tmp_path):
    with open(PAGE, encoding='utf-8') as f:
        blocks = marked_blocks(f.read())
    files = [target for kind, target, _ in blocks if kind == 'File']
    assert files == ['my_project/my_backbone.py', 'my_project/my_config.py', 'my_project/build_it.py']
    assert [kind for kind, _, _ in blocks].count('Run in') == 1
    env = {**os.environ, 'LRFR': REPO, 'OMP_NUM_THREADS': '1',
           # `python` in the commands is this interpreter; PYTHONPATH only makes a checkout that is not the
           # installed one (a worktree) the lrfr that runs, as `pip install -e .` does in CI.
           'PATH': osp.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''),
           'PYTHONPATH': REPO}
    ran = []
    for kind, target, body in blocks:
        if kind == 'File':
            path = tmp_path / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            continue
        for command in (line for line in body.splitlines() if line.strip()):
            proc = subprocess.run(['bash', '-c', command], cwd=tmp_path / target, env=env, capture_output=True,
                                  text=True, timeout=600)
            assert proc.returncode == 0, f'{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
            ran.append((command, proc.stdout + proc.stderr))
    assert 'torch.Size([2, 64])' in ran[0][1]
    assert 'building the demo benchmark in data/demo_tinyface' in ran[1][1]
    work_dir = tmp_path / 'my_project' / 'work_dirs' / 'my_config'
    assert "type='TinyMeanNet'" in (work_dir / 'my_config.py').read_text()
    assert (tmp_path / 'my_project' / 'results.json').is_file() and 'Rank-1 (%)' in ran[2][1]


def test_page_asks_for_no_pythonpath():
    with open(PAGE, encoding='utf-8') as f:
        text = f.read()
    assert 'PYTHONPATH=.' not in text
    if not osp.isdir(osp.join(REPO, 'lrfr', '.mim', 'configs', 'demo')):
        pytest.fail('lrfr/.mim/configs does not reach the checkout\'s configs/ (the lrfr:: bases of the page)')
