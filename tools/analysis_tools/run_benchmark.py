"""Train and test a list of configs, then print the paper's Table 5 layout.

    python tools/analysis_tools/run_benchmark.py configs/demo/*.py --out demo_table.md

Configs run in dependency order: a config whose ``load_from`` (or an ``init_cfg`` checkpoint) points into
``work_dirs/<other config>/`` runs after that other config. Each is trained with ``tools/train.py``; the
configs that declare ``benchmark = dict(name=..., row=...)`` are the table's rows (in ``row`` order) and are
then tested with ``tools/test.py`` on their final checkpoint. Both tools run as child processes, so each run
starts from clean global state.
"""
import argparse
import functools
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WORK_ROOT = 'work_dirs'  # configs refer to earlier stages as work_dirs/<config name>/final.pth


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train + test configs and print a benchmark table')
    parser.add_argument('configs', nargs='+', help='config files (any order)')
    parser.add_argument('--out', help='write the table as Markdown to this file')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='overrides passed to every train run, e.g. train_cfg.max_iters=20')
    parser.add_argument('--skip-existing', action='store_true',
                        help='reuse runs whose work dir already has final.pth and results.json')
    return parser.parse_args()


@functools.lru_cache(maxsize=None)
def read_config(path: str) -> Config:
    """Each config is parsed once per driver run (read-only here: ordering, test decision, row label)."""
    return Config.fromfile(path)


def stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def _checkpoint_refs(node) -> List[str]:
    """Every string under a config node that looks like a checkpoint path in ``work_dirs/``."""
    if isinstance(node, dict):
        return [ref for value in node.values() for ref in _checkpoint_refs(value)]
    if isinstance(node, (list, tuple)):
        return [ref for value in node for ref in _checkpoint_refs(value)]
    if isinstance(node, str) and node.startswith(WORK_ROOT + '/') and node.endswith('.pth'):
        return [node]
    return []


def order_by_dependency(configs: List[str]) -> List[str]:
    """Topological order: producers of ``work_dirs/<name>/...`` checkpoints before their consumers."""
    by_name = {stem(c): c for c in configs}
    needs: Dict[str, List[str]] = {}
    for config in configs:
        refs = _checkpoint_refs(read_config(config).to_dict())
        deps = [ref.split('/')[1] for ref in refs]
        missing = [d for d in deps if d not in by_name and not osp.isdir(osp.join(WORK_ROOT, d))]
        if missing:
            raise FileNotFoundError(f'{config} starts from work_dirs/{missing[0]}/, which is neither in the '
                                    'list of configs nor already trained; add that config to the command')
        needs[stem(config)] = [d for d in deps if d in by_name]
    ordered: List[str] = []
    visiting = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise ValueError(f'circular checkpoint dependency through {name}')
        visiting.add(name)
        for dep in needs[name]:
            visit(dep)
        ordered.append(name)

    for config in configs:
        visit(stem(config))
    return [by_name[name] for name in ordered]


def run(cmd: List[str], log_file: str) -> None:
    env = {**os.environ, 'PYTHONPATH': REPO + os.pathsep + os.environ.get('PYTHONPATH', '')}
    with open(log_file, 'w', encoding='utf-8') as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        with open(log_file, encoding='utf-8') as log:
            tail = ''.join(log.readlines()[-30:])
        raise RuntimeError(f'command failed ({proc.returncode}): {" ".join(cmd)}\n--- last lines of '
                           f'{log_file} ---\n{tail}')


def train_and_test(config: str, cfg_options: List[str], skip_existing: bool) -> Optional[str]:
    """Train one config and test its final checkpoint; return the results JSON path (None: no test set)."""
    work_dir = osp.join(WORK_ROOT, stem(config))
    os.makedirs(work_dir, exist_ok=True)
    final = osp.join(work_dir, 'final.pth')
    results = osp.join(work_dir, 'results.json')
    cfg = read_config(config)
    # Only table rows are tested; earlier stages report their validation at the end of training.
    has_test = cfg.get('benchmark') is not None and cfg.get('test_dataloader') is not None
    if skip_existing and osp.isfile(final) and (osp.isfile(results) or not has_test):
        print(f'[skip] {stem(config)}: already trained', flush=True)
        return results if has_test else None
    options = ['--cfg-options', *cfg_options] if cfg_options else []
    start = time.time()
    run([sys.executable, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir, *options],
        osp.join(work_dir, 'train_stdout.log'))
    if not osp.isfile(final):
        raise RuntimeError(f'{config}: training finished without a checkpoint in {work_dir}')
    line = f'[train] {stem(config)}: {time.time() - start:.0f} s'
    if has_test:
        start = time.time()
        run([sys.executable, osp.join(REPO, 'tools', 'test.py'), config, final, '--work-dir', work_dir,
             '--out', results], osp.join(work_dir, 'test_stdout.log'))
        line += f', [test] {time.time() - start:.0f} s'
    print(line, flush=True)
    return results if has_test else None


def main() -> None:
    args = parse_args()
    for config in args.configs:
        if not osp.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
    start = time.time()
    rows = []
    for config in order_by_dependency(args.configs):
        results = train_and_test(config, args.cfg_options, args.skip_existing)
        benchmark = read_config(config).get('benchmark')
        if results is not None and benchmark is not None:
            rows.append((benchmark.get('row', len(rows)), benchmark['name'], results))
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from benchmark_table import COLUMNS, build_rows, column_title  # the table tool, reused
    from lrfr.evaluation.reporting import make_table
    rows.sort(key=lambda row: row[0])  # benchmark.row orders the table; else run order
    names, paths = [name for _, name, _ in rows], [path for _, _, path in rows]
    body = build_rows(paths, names, COLUMNS, prefix=None)
    header = ['Method'] + [f'{column_title(c)} (%)' for c in COLUMNS]
    print(make_table(header, body, title=' Table 5 layout '))
    print(f'total time: {time.time() - start:.0f} s')
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(make_table(header, body, markdown=True) + '\n')
        print(f'table written to {args.out}')


if __name__ == '__main__':
    main()
