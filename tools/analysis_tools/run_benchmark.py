"""Train and test a list of configs over several seeds, then print the paper's Table 5 layout with error bars.

    python tools/analysis_tools/run_benchmark.py configs/demo/*.py --seeds 2 --out demo_table.md

Configs run in dependency order: a config whose ``load_from`` (or an ``init_cfg`` checkpoint) points into
``work_dirs/<other config>/`` runs after that other config. Every seed ``s`` (0..N-1) re-runs the whole chain
in ``work_dirs/<config>/seed<s>/``: the driver dumps a resolved config there with ``randomness.seed = s`` and
every ``work_dirs/<other>/<file>.pth`` reference rewritten to ``work_dirs/<other>/seed<s>/<file>.pth``, trains
it with ``tools/train.py`` and, for the table's rows (configs that declare ``benchmark = dict(name=...,
row=...)``), tests the final checkpoint with ``tools/test.py --out``. A row with ``benchmark.train=False`` is
not trained: it is tested at its seeded initialisation (the untrained reference). Each tool runs as a child
process (clean global state); its output goes to ``train.log`` / ``test.log`` in the seed's folder and a live
line shows stage, seed, iteration, loss and ETA. The table (mean ± std over seeds, paired bootstrap intervals
against the FR-only row) comes from ``benchmark_table.py``, which reads the same results files.
"""
import argparse
import concurrent.futures
import os
import os.path as osp
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, TextIO

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WORK_ROOT = 'work_dirs'  # configs refer to earlier stages as work_dirs/<config name>/final.pth
PLAIN_INTERVAL_S = 10.0  # not a terminal (CI, a pipe): one progress line this often
#: Read by torch (intra-op threads), OpenMP and MKL when a process starts.
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')


class StageError(RuntimeError):
    """A stage failed: the message is one line naming the config, the seed and the log file."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train + test configs over seeds and print a benchmark table')
    parser.add_argument('configs', nargs='+', help='config files (any order)')
    parser.add_argument('--seeds', type=int, default=2,
                        help='train every stage with seeds 0..N-1 (default 2: the least that gives a std)')
    parser.add_argument('--out', help='write the table as Markdown to this file')
    parser.add_argument('--baseline', default=None,
                        help='benchmark name of the FR-only row (default: the config with benchmark.baseline=True)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='overrides passed to every train and test run, e.g. train_cfg.max_iters=20')
    parser.add_argument('--skip-existing', action='store_true',
                        help='reuse stages whose seed folder already has final.pth (and results.json for rows)')
    parser.add_argument('--jobs', type=int, default=None,
                        help='seed chains run side by side (default: min(CPU cores, seeds)); each seed\'s stages '
                             'stay in order')
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads of every training/test process (default 1). Fixed, so that the table '
                             'does not depend on the machine\'s core count: the same seed and thread count give '
                             'the same numbers')
    parser.add_argument('--debug', action='store_true', help='show tracebacks instead of one-line errors')
    return parser.parse_args(argv)


def read_config(path: str) -> Config:
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


def seed_dir(config: str, seed: int) -> str:
    return osp.join(WORK_ROOT, stem(config), f'seed{seed}')


def per_seed_path(ref: str, seed: int) -> str:
    """``work_dirs/<name>/<file>.pth`` -> ``work_dirs/<name>/seed<seed>/<file>.pth``."""
    _, name, rest = ref.split('/', 2)
    return '/'.join((WORK_ROOT, name, f'seed{seed}', rest))


def _rewrite(node, seed: int):
    if isinstance(node, dict):
        return {key: _rewrite(value, seed) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_rewrite(value, seed) for value in node)
    if _checkpoint_refs(node):
        return per_seed_path(node, seed)
    return node


def seeded_config(cfg: Config, seed: int) -> Config:
    """A copy of ``cfg`` for one seed: ``randomness.seed = seed``, earlier stages' checkpoints of that seed."""
    data = _rewrite(cfg.to_dict(), seed)
    data['randomness'] = {**(data.get('randomness') or {}), 'seed': seed}
    return Config(data)


def order_by_dependency(configs: List[str], cfgs: Optional[Dict[str, Config]] = None,
                        seeds: int = 1) -> List[str]:
    """Topological order: producers of ``work_dirs/<name>/...`` checkpoints before their consumers.

    A reference to a config not in the list must already be trained for every seed.
    """
    cfgs = cfgs if cfgs is not None else {config: read_config(config) for config in configs}
    by_name = {stem(c): c for c in configs}
    needs: Dict[str, List[str]] = {}
    for config in configs:
        refs = _checkpoint_refs(cfgs[config].to_dict())
        for ref in refs:
            dep = ref.split('/')[1]
            missing = [s for s in range(seeds) if not osp.isfile(per_seed_path(ref, s))]
            if dep not in by_name and missing:
                raise ValueError(f'{config} starts from {ref}, which is neither made by a config of the list nor '
                                 f'there for seed {missing[0]} ({per_seed_path(ref, missing[0])}); add that config')
        needs[stem(config)] = [ref.split('/')[1] for ref in refs if ref.split('/')[1] in by_name]
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


# mmengine's log lines: "Iter(train) [ 50/300]  ... eta: 0:00:20  ...  loss: 2.3456  loss_cls: ..."
_ITER = re.compile(r'Iter\((train|val|test)\)\s*\[\s*(\d+)/(\d+)\]')
_ETA = re.compile(r'\beta: (\S+)')
_LOSS = re.compile(r'\bloss: (\S+)')


def parse_progress(line: str) -> Optional[Dict[str, str]]:
    """Phase, iteration, total, ETA and loss of an mmengine log line (None when it reports none)."""
    match = _ITER.search(line)
    if not match:
        return None
    out = dict(phase=match.group(1), iter=match.group(2), total=match.group(3))
    for key, pattern in (('eta', _ETA), ('loss', _LOSS)):
        found = pattern.search(line[match.end():])
        if found:
            out[key] = found.group(1)
    return out


class Progress:
    """One live status line: rewritten in place on a terminal, printed every ``interval`` s otherwise."""

    def __init__(self, stream: Optional[TextIO] = None, interval: float = PLAIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.interval, self.clock = interval, clock
        self.tty = bool(getattr(self.stream, 'isatty', lambda: False)())
        self.last = -float('inf')
        self.width = 0
        self.lock = threading.Lock()  # seed chains running side by side share the line

    def status(self, text: str) -> None:
        with self.lock:
            self._status(text)

    def _status(self, text: str) -> None:
        now = self.clock()
        if self.tty:
            self.stream.write('\r' + text.ljust(self.width))
            self.width = len(text)
            self.stream.flush()
        elif now - self.last >= self.interval:
            self.stream.write(text + '\n')
            self.stream.flush()
        else:
            return
        self.last = now

    def line(self, text: str) -> None:
        """A permanent line (stage done, summary)."""
        with self.lock:
            self._line(text)

    def _line(self, text: str) -> None:
        if self.tty and self.width:
            self.stream.write('\r' + ' ' * self.width + '\r')
            self.width = 0
        self.stream.write(text + '\n')
        self.stream.flush()
        self.last = -float('inf')  # the next status line shows at once


def run_stage(cmd: List[str], log_file: str, label: str, progress: Progress, config: str,
              threads: Optional[int] = None) -> None:
    """Run a tool on ``config``, copying its output to ``log_file`` and its progress to the status line.

    ``threads`` pins the child's CPU threads (torch, OpenMP, MKL read these variables at start-up).
    """
    env = {**os.environ, 'PYTHONPATH': REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
           'PYTHONUNBUFFERED': '1'}  # lines reach the log (and the status line) as they are printed
    if threads is not None:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    progress.line(f'{label}: running, log {log_file}')
    with open(log_file, 'w', encoding='utf-8') as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                                errors='replace')
        last = ''
        for line in proc.stdout:
            log.write(line)
            log.flush()  # the log can be followed (tail -f) while the stage runs
            if line.strip():
                last = line.strip()
            state = parse_progress(line)
            if state:
                extra = ''.join(f', {k} {state[k]}' for k in ('loss', 'eta') if k in state)
                progress.status(f'{label}: {state["phase"]} iter {state["iter"]}/{state["total"]}{extra}')
        code = proc.wait()
    if code != 0:
        raise StageError(f'{label} failed (exit {code}, config {config}): {last[:300]}; full log: {log_file}')


@dataclass
class Stage:
    config: str
    seed: int
    cfg: Config

    @property
    def benchmark(self) -> Optional[dict]:
        return self.cfg.get('benchmark')

    @property
    def tested(self) -> bool:
        return self.benchmark is not None  # plan() checked that it has a test_dataloader

    @property
    def trained(self) -> bool:
        return self.benchmark is None or self.benchmark.get('train', True)


def run_one(stage: Stage, label: str, cfg_options: List[str], skip_existing: bool,
            progress: Progress, threads: Optional[int] = None) -> Optional[str]:
    """Train and test one config for one seed; return its results JSON (None: not a table row)."""
    work_dir = seed_dir(stage.config, stage.seed)
    final, results = osp.join(work_dir, 'final.pth'), osp.join(work_dir, 'results.json')
    done = (not stage.trained or osp.isfile(final)) and (not stage.tested or osp.isfile(results))
    if skip_existing and done:
        progress.line(f'{label}: done before, reused ({work_dir})')
        return results if stage.tested else None
    # A training that finished is reused even when its test is still to do (or failed).
    reuse_training = skip_existing and stage.trained and osp.isfile(final)
    os.makedirs(work_dir, exist_ok=True)
    for stale in ((results,) if reuse_training else (final, results)):
        if osp.lexists(stale):  # a failed rerun must not leave an older run's files to be reused
            os.remove(stale)
    config_file = osp.join(work_dir, stem(stage.config) + '.py')
    seeded_config(stage.cfg, stage.seed).dump(config_file)
    options = ['--cfg-options', *cfg_options] if cfg_options else []
    start, parts = time.time(), []
    if reuse_training:
        parts.append('training reused')
    elif stage.trained:
        run_stage([sys.executable, osp.join(REPO, 'tools', 'train.py'), config_file, '--work-dir', work_dir,
                   *options], osp.join(work_dir, 'train.log'), label, progress, stage.config, threads)
        if not osp.isfile(final):
            raise StageError(f'{label}: training of {stage.config} ended without {final}; '
                             f'full log: {osp.join(work_dir, "train.log")}')
        parts.append(f'trained in {time.time() - start:.0f} s')
    if stage.tested:
        start = time.time()
        checkpoint = [final] if stage.trained else ['--random-init']
        run_stage([sys.executable, osp.join(REPO, 'tools', 'test.py'), config_file, *checkpoint,
                   '--work-dir', work_dir, '--out', results, '--no-plots', *options],
                  osp.join(work_dir, 'test.log'), label + ' [test]', progress, stage.config, threads)
        parts.append(f'tested in {time.time() - start:.0f} s')
    progress.line(f'{label}: {", ".join(parts)} (logs in {work_dir})')
    return results if stage.tested else None


def plan(configs: List[str], seeds: int) -> List[Stage]:
    """Check the input and list the stages: every config in dependency order, for each seed."""
    if seeds < 1:
        raise ValueError(f'--seeds must be at least 1, got {seeds}')
    for config in configs:
        if not osp.isfile(config):
            raise ValueError(f'config not found: {config}')
    cfgs = {config: read_config(config) for config in configs}
    for config, cfg in cfgs.items():
        if cfg.get('benchmark') is not None and cfg.get('test_dataloader') is None:
            raise ValueError(f'{config} declares a table row (benchmark) but has no test_dataloader to test it on')
    if not any(cfg.get('benchmark') is not None for cfg in cfgs.values()):
        raise ValueError(f'none of the {len(configs)} configs ({", ".join(map(stem, configs))}) declares a table '
                         "row: add benchmark = dict(name='...', row=1) to the configs to compare")
    ordered = order_by_dependency(configs, cfgs, seeds)
    return [Stage(config, seed, cfgs[config]) for seed in range(seeds) for config in ordered]


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        _main(args)
    except (StageError, ValueError, KeyError, FileNotFoundError) as e:
        if args.debug:
            raise
        raise SystemExit(f'run_benchmark: {e}') from None


def _main(args: argparse.Namespace) -> None:
    stages = plan(args.configs, args.seeds)
    if args.threads < 1:
        raise ValueError(f'--threads must be at least 1, got {args.threads}')
    jobs = args.jobs if args.jobs is not None else max(1, min(os.cpu_count() or 1, args.seeds))
    if jobs < 1:
        raise ValueError(f'--jobs must be at least 1, got {jobs}')
    progress = Progress()
    start = time.time()
    labels = {id(stage): f'stage {k}/{len(stages)} {stem(stage.config)} seed {stage.seed}'
              for k, stage in enumerate(stages, 1)}
    chains: Dict[int, List[Stage]] = {}
    for stage in stages:  # plan() lists every seed's stages in dependency order
        chains.setdefault(stage.seed, []).append(stage)
    failed = threading.Event()  # a failing chain stops the others at their next stage

    def run_chain(chain: List[Stage]) -> List[str]:
        found = []
        for stage in chain:
            if failed.is_set():
                break
            try:
                path = run_one(stage, labels[id(stage)], args.cfg_options, args.skip_existing, progress,
                               args.threads)
            except BaseException:
                failed.set()
                raise
            if path is not None:
                found.append(path)
        return found

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_chain, chains[seed]) for seed in sorted(chains)]
        per_seed = [future.result() for future in futures]  # re-raises the first failing chain's error
    results: List[str] = [path for paths in per_seed for path in paths]
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    import benchmark_table  # the table tool: one implementation for both tools
    rows = benchmark_table.load_rows(results)
    print(benchmark_table.render(rows, args.baseline, title=' Table 5 layout '))
    minutes, seconds = divmod(int(time.time() - start), 60)
    print(f'total time: {minutes} min {seconds} s for {len(stages)} stages ({args.seeds} seed(s), {jobs} at a '
          f'time, {args.threads} thread(s) each); '
          f'logs and results: {WORK_ROOT}/<config>/seed<s>/ (train.log, test.log, results.json)')
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(benchmark_table.render(rows, args.baseline, markdown=True) + '\n')
        print(f'table written to {args.out}')


if __name__ == '__main__':
    main()
