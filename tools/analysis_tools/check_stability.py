"""Train configs for a few seeds and report, per run, whether the loss ever spikes.

    python tools/analysis_tools/check_stability.py CONFIG [CONFIG ...] --seeds 3 [--iters N] [--batch-size B]

(``--first-seed K`` runs seeds K..K+2 instead, to split the work.)

Every run trains the config as shipped, except: ``train_cfg.max_iters`` (``--iters``; default: the config's
own), the train batch (``--batch-size``, with an SGD learning rate scaled linearly to it, Goyal et al. 2017;
Adam's is kept), no validation, no checkpoint but the final one, main-process loading. Full-size configs
read their datasets from a demo tree instead of CelebA/TinyFace (``--data-root``): ``TinyFaceDataset`` reads
its TinyFace layout as is, ``CelebADataset`` becomes the demo's HR face folder with the same pipeline, and
``MXFaceDataset`` (RecordIO) that folder resized to RecordIO's 112x112 first.
A ``work_dirs/<name>/final.pth`` reference (``load_from``, a ``Pretrained`` ``init_cfg``) is replaced by the
same seed's checkpoint of ``<name>`` when ``<name>`` is among the CONFIGs (they are trained in dependency
order) or was left in ``--work-dir`` by an earlier invocation with the same ``--iters``, and dropped otherwise
(the stage then starts from scratch: its ``from`` column says ``scratch``, else ``config``); so is any other
checkpoint the config names that is not on this machine (a converted public model). ``--out`` is
rewritten after every run; with ``--skip-existing`` the runs it holds that finished (same ``--iters`` and
``--batch-size``, final checkpoint present) are reused, so an interrupted sweep goes on where it stopped.

Per run the table gives the first and final loss (means of the first and last 5 iterations), the largest
loss and its iteration, the largest ratio of a 5-iteration moving mean to the median of the 50 iterations
before it (after 20 iterations), the largest gradient norm and the share of steps that clipping shortened.
A run is flagged ``SPIKE`` when that ratio exceeds ``--spike-ratio`` (default 2) and the mean's rise above the
median is more than ``--spike-rise`` (default 0.25) of the loss decrease made so far (first loss - median): a
ratio alone misleads once the loss nears zero (a classifier that has fitted a small stand-in set jumps from
0.05 to 0.3 on one hard batch), a divergence gives back what the run had learnt. Above the ratio but within
the share, the status says ``ok (bump: N % of the progress)``. ``DIVERGED`` means LossGuardHook stopped the
run. After the per-run table comes a summary, one row per config over its seeds. The JSON written with
``--out`` holds every loss, for plots.
"""
import argparse
import copy
import json
import math
import os
import os.path as osp
import re
import statistics
import sys
import time
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from lrfr.utils import register_all_modules  # noqa: E402
from lrfr.engine.hooks import LossDivergedError  # noqa: E402
from lrfr.utils.config_utils import fill_sampler_length  # noqa: E402

REF_RE = re.compile(r'^work_dirs/(?P<name>[^/]+)/final\.pth$')
SMOOTH, WINDOW, SKIP = 5, 50, 20


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train configs on a few seeds and flag loss spikes')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--seeds', type=int, default=3, help='number of seeds (default 3)')
    parser.add_argument('--first-seed', type=int, default=0, help='seeds FIRST..FIRST+N-1 (default 0)')
    parser.add_argument('--iters', type=int, help="iterations per run (default: the config's max_iters)")
    parser.add_argument('--batch-size', type=int, help='train batch (SGD lr scaled linearly to it)')
    parser.add_argument('--data-root', default='data/demo_tinyface',
                        help='demo tree that full-size configs read instead of CelebA/TinyFace')
    parser.add_argument('--work-dir', default='work_dirs/stability', help='runs go to WORK_DIR/<config>/seed<k>')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    parser.add_argument('--spike-ratio', type=float, default=2.0, help='flag a run above this ratio (default 2)')
    parser.add_argument('--spike-rise', type=float, default=0.25,
                        help='... that also gave back more than this share of its progress (default 0.25)')
    parser.add_argument('--out', help='write the per-run records (every loss included) to this JSON file')
    parser.add_argument('--skip-existing', action='store_true',
                        help='reuse the records of --out whose runs (same --iters and --batch-size) finished')
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f'--seeds must be >= 1, got {args.seeds}')
    for name in ('iters', 'batch_size', 'threads'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    return args


def stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


# -- the statistics ------------------------------------------------------------------------------------------------
def spike_stats(losses: List[float], smooth: int = SMOOTH, window: int = WINDOW, skip: int = SKIP) -> dict:
    """First/final/max loss, the largest ratio of a ``smooth``-iteration moving mean to the median of the
    ``window`` raw losses before it (from iteration ``skip`` on; 0 when the run is shorter), and the largest
    rise of that mean above the median as a share of the progress made so far (``(mean - median) /
    (first - median)``: 1 gives back everything the run had learnt, as a divergence does)."""
    n = len(losses)
    finite = [v for v in losses if math.isfinite(v)]
    stats = dict(iters=n, first=statistics.fmean(losses[:smooth]) if n else math.nan,
                 final=statistics.fmean(losses[-smooth:]) if n else math.nan,
                 max=max(finite) if finite else math.nan,
                 argmax=(losses.index(max(finite)) + 1) if finite else 0, max_ratio=0.0, ratio_at=0,
                 max_rise=0.0)
    for end in range(max(skip, smooth), n + 1):
        recent = losses[end - smooth:end]
        before = losses[max(0, end - smooth - window):end - smooth]
        if not before:
            continue
        median = statistics.median(before)
        mean = statistics.fmean(recent)
        ratio = mean / median if median > 0 else math.inf
        if ratio > stats['max_ratio']:
            stats['max_ratio'], stats['ratio_at'] = ratio, end
        progress = stats['first'] - median
        rise = (mean - median) / progress if progress > 0 else (math.inf if mean > median else 0.0)
        stats['max_rise'] = max(stats['max_rise'], rise)
    return stats


def status_of(stats: dict, diverged: bool, spike_ratio: float, spike_rise: float) -> str:
    """``DIVERGED`` (LossGuardHook stopped the run), ``SPIKE`` (a moving mean above ``spike_ratio`` x its median
    that gave back more than ``spike_rise`` of the progress), ``ok (bump ...)`` (above the ratio, within the
    share: a transient rise after the loss came near zero) or ``ok``."""
    if diverged:
        return 'DIVERGED'
    if stats['max_ratio'] <= spike_ratio:
        return 'ok'
    share = f"{100 * stats['max_rise']:.0f} % of the progress"
    return f'SPIKE ({share})' if stats['max_rise'] > spike_rise else f'ok (bump: {share})'


class RecordHook(Hook):
    """The total loss and the gradient norms (before clipping) of every training iteration.

    The norms come from ``PartClipOptimWrapper.last_grad_norms`` (``grad_norm`` for the parameters outside
    every clipped part, ``grad_norm_<part>`` per part); reading them costs a sync, which this tool accepts.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.losses: List[float] = []
        self.grad_norms: Dict[str, List[float]] = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses.append(float(outputs['loss'].detach()))
        for key, norm in getattr(runner.optim_wrapper, 'last_grad_norms', {}).items():
            self.grad_norms.setdefault(key, []).append(float(norm))


def clip_stats(wrapper, grad_norms: Dict[str, List[float]]) -> Dict[str, dict]:
    """Per norm key: the largest norm and the share of steps its clipping shortened."""
    limits = {'grad_norm': (wrapper.clip_grad_kwargs or {}).get('max_norm')}
    limits.update({f'grad_norm_{part}': cfg['max_norm'] for part, cfg in getattr(wrapper, 'part_clip', {}).items()})
    stats = {}
    for key, norms in grad_norms.items():
        limit = limits.get(key)
        stats[key] = dict(max=max(norms), clipped=sum(g > limit for g in norms) / len(norms) if limit else 0.0)
    return stats


# -- the config --------------------------------------------------------------------------------------------------
def retarget(dataset: dict, data_root: str) -> dict:
    """Point a dataset config (ConcatDataset included) at the demo tree (see the module docstring)."""
    dataset = copy.deepcopy(dataset)
    if dataset['type'] == 'ConcatDataset':
        dataset['datasets'] = [retarget(d, data_root) for d in dataset['datasets']]
    elif dataset['type'] == 'CelebADataset':
        dataset = dict(type='DemoHRFaceDataset', data_root=data_root, pipeline=dataset['pipeline'],
                       **({'branch': dataset['branch']} if 'branch' in dataset else {}))
    elif dataset['type'] == 'MXFaceDataset':  # InsightFace RecordIO faces are aligned at 112x112
        load, *rest = dataset['pipeline']
        dataset = dict(type='DemoHRFaceDataset', data_root=data_root,
                       pipeline=[load, dict(type='ResizeFace', size=(112, 112)), *rest],
                       **({'branch': dataset['branch']} if 'branch' in dataset else {}))
    elif dataset['type'] in ('TinyFaceDataset', 'DemoTinyFaceDataset', 'DemoHRFaceDataset'):
        dataset['data_root'] = data_root
    else:
        raise KeyError(f'check_stability: no demo stand-in for dataset type {dataset["type"]!r}')
    return dataset


def relink(node, checkpoints: Dict[str, str], missing: List[str]):
    """``node`` with ``work_dirs/<name>/final.pth`` references mapped to ``checkpoints`` (or removed)."""
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and isinstance(node.get('checkpoint'), str):
            match = REF_RE.match(node['checkpoint'])
            if match:
                if match['name'] not in checkpoints:
                    missing.append(match['name'])
                    return None
                return {**node, 'checkpoint': checkpoints[match['name']]}
            if not osp.isfile(node['checkpoint']):  # e.g. a converted public model that is not on this machine
                missing.append(node['checkpoint'])
                return None
        out = {k: relink(v, checkpoints, missing) for k, v in node.items()}
        return {k: v for k, v in out.items() if not (k == 'init_cfg' and v is None)}
    if isinstance(node, list):
        return [relink(v, checkpoints, missing) for v in node]
    return node


class EarlierRuns(dict):
    """This seed's finished stages; a stage not run by this invocation is looked up in ``work_dir``, where an
    earlier invocation with the same ``--iters`` may have left its final checkpoint."""

    def __init__(self, work_dir: str, seed: int, iters: Optional[int]) -> None:
        super().__init__()
        self.work_dir, self.seed, self.iters = work_dir, seed, iters

    def __missing__(self, name: str) -> str:
        if self.iters:
            path = osp.join(self.work_dir, name, f'seed{self.seed}', f'iter_{self.iters}.pth')
            if osp.isfile(path):
                return path
        raise KeyError(name)

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name) -> bool:
        return self.get(name) is not None


def make_config(path: str, seed: int, args: argparse.Namespace, checkpoints: Dict[str, str]) -> tuple:
    """The run's config and the names of upstream stages it could not start from."""
    cfg = Config.fromfile(path)
    missing: List[str] = []
    cfg.model = relink(cfg.model.to_dict(), checkpoints, missing)
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and REF_RE.match(load_from):
        name = REF_RE.match(load_from)['name']
        cfg.load_from = checkpoints.get(name)
        if cfg.load_from is None:
            missing.append(name)
    elif isinstance(load_from, str) and not osp.isfile(load_from):
        missing.append(load_from)
        cfg.load_from = None
    if cfg.get('custom_hooks'):
        cfg.custom_hooks = list(cfg.custom_hooks)
    cfg.resume = False
    cfg.work_dir = osp.join(args.work_dir, stem(path), f'seed{seed}')
    cfg.experiment_name = f'{stem(path)}_seed{seed}_{time.time_ns()}'
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.log_level = 'WARNING'
    if args.iters:
        cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = 10 ** 9
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=10 ** 9,
                                        save_last=True, max_keep_ckpts=1, save_best=None)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10 ** 9)
    loader = cfg.train_dataloader
    loader.dataset = retarget(loader.dataset.to_dict(), args.data_root)
    loader.num_workers, loader.persistent_workers, loader.prefetch_factor = 0, False, None
    if args.batch_size and args.batch_size != loader.batch_size:
        optimizer = cfg.optim_wrapper.optimizer
        if optimizer.type == 'SGD':
            optimizer.lr = optimizer.lr * args.batch_size / loader.batch_size
        loader.batch_size = args.batch_size
        if 'batch_size' in loader.sampler:
            loader.sampler.batch_size = args.batch_size
    fill_sampler_length(cfg)
    return cfg, missing


def order_by_dependency(paths: List[str]) -> List[str]:
    """Producers of ``work_dirs/<name>/final.pth`` before the configs that start from them."""
    names = {stem(p): p for p in paths}
    deps = {}
    for p in paths:
        text = open(p, encoding='utf-8').read() + repr(Config.fromfile(p).to_dict())
        deps[stem(p)] = sorted({m for m in re.findall(r'work_dirs/([^/\'"]+)/final\.pth', text) if m in names})
    ordered: List[str] = []

    def visit(name: str, trail: tuple) -> None:
        if name in trail:
            raise ValueError(f'check_stability: circular checkpoint dependency through {name}')
        if name not in ordered:
            for dep in deps[name]:
                visit(dep, trail + (name,))
            ordered.append(name)

    for p in paths:
        visit(stem(p), ())
    return [names[n] for n in ordered]


# -- the runs ----------------------------------------------------------------------------------------------------
def run_one(path: str, seed: int, args: argparse.Namespace, checkpoints: Dict[str, str]) -> dict:
    cfg, missing = make_config(path, seed, args, checkpoints)
    record = RecordHook()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(record)
    status, start = 'ok', time.perf_counter()
    try:
        runner.train()
    except LossDivergedError as err:
        status = 'DIVERGED'
        runner.logger.error(str(err))
    wall = time.perf_counter() - start
    stats = spike_stats(record.losses)
    grads = clip_stats(runner.optim_wrapper, record.grad_norms)
    rest = grads.pop('grad_norm', dict(max=math.nan, clipped=0.0))
    status = status_of(stats, status == 'DIVERGED', args.spike_ratio, args.spike_rise)
    final = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    return dict(config=stem(path), seed=seed, batch=cfg.train_dataloader.batch_size,
                lr=cfg.optim_wrapper.optimizer.lr, start='scratch' if missing else 'config',
                max_grad_norm=rest['max'], clipped=rest['clipped'], part_grads=grads, status=status,
                wall_s=wall, losses=record.losses,
                final_ckpt=final if status != 'DIVERGED' and osp.isfile(final) else None, **stats)


def fmt(value: float) -> str:
    return f'{value:.3g}' if math.isfinite(value) else str(value)


def table(records: List[dict]) -> str:
    """The markdown table of the runs (a ``parts`` column when a run clips parts of its model separately)."""
    with_parts = any(r.get('part_grads') for r in records)
    head = ('| config | seed | batch | lr | from | iters | first loss | final loss | max loss (iter) | '
            'max ratio to median (iter) | max grad norm | clipped | ' + ('parts: max norm, clipped | ' if with_parts
                                                                       else '') + 'status |')
    lines = [head, '|' + '---|' * head.count(' | ') + '---|']
    for r in records:
        parts = '; '.join(f"{key[len('grad_norm_'):]} {fmt(g['max'])}, {100 * g['clipped']:.0f} %"
                          for key, g in r.get('part_grads', {}).items()) or '-'
        lines.append(f"| {r['config']} | {r['seed']} | {r['batch']} | {r['lr']:.3g} | {r['start']} | {r['iters']} "
                     f"| {fmt(r['first'])} | {fmt(r['final'])} | {fmt(r['max'])} ({r['argmax']}) "
                     f"| {r['max_ratio']:.2f} ({r['ratio_at']}) | {fmt(r['max_grad_norm'])} "
                     f"| {100 * r['clipped']:.0f} % | " + (f'{parts} | ' if with_parts else '') + f"{r['status']} |")
    return '\n'.join(lines)


def summary(records: List[dict]) -> str:
    """One row per config (in the records' order): its seeds, final losses, largest ratios and statuses."""
    by_config: Dict[str, List[dict]] = {}
    for r in records:
        by_config.setdefault(r['config'], []).append(r)
    lines = ['| config | seeds | final loss (per seed) | max ratio to running median (per seed) | status |',
             '|---|---|---|---|---|']
    for name, runs in by_config.items():
        seeds = ','.join(str(r['seed']) for r in runs)
        finals = ' / '.join(fmt(r['final']) for r in runs)
        ratios = ' / '.join(f"{r['max_ratio']:.2f}" for r in runs)
        statuses = '; '.join(sorted({r['status'] for r in runs}))
        lines.append(f'| {name} | {seeds} | {finals} | {ratios} | {statuses} |')
    return '\n'.join(lines)


def finished_runs(args: argparse.Namespace) -> Dict[tuple, dict]:
    """The records of ``--out`` whose run had this invocation's ``--iters`` and ``--batch-size`` and left its
    final checkpoint (``--skip-existing``: an interrupted sweep goes on where it stopped)."""
    if not args.out or not osp.isfile(args.out):
        return {}
    with open(args.out, encoding='utf-8') as f:
        records = json.load(f)
    return {(r['config'], r['seed']): r for r in records
            if (args.iters is None or r['iters'] == args.iters)
            and (args.batch_size is None or r['batch'] == args.batch_size)
            and r.get('final_ckpt') and osp.isfile(r['final_ckpt'])}


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    for path in args.configs:
        if not osp.isfile(path):
            raise SystemExit(f'check_stability: config file not found: {path}')
        if 'train_cfg' not in Config.fromfile(path):
            raise SystemExit(f'check_stability: {path} has no train_cfg (a test-only config): nothing to train')
    untrained = [p for p in args.configs if (Config.fromfile(p).get('benchmark') or {}).get('train') is False]
    for path in untrained:  # e.g. the demo's untrained reference row: never trained, so nothing to check
        print(f'check_stability: skipping {path} (benchmark.train=False: a reference that is never trained)')
    args.configs = [p for p in args.configs if p not in untrained]
    register_all_modules()  # lrfr's modules, and lrfr.compat (e.g. torch >= 2.6 loading mmengine checkpoints)
    torch.set_num_threads(args.threads)
    done = finished_runs(args) if args.skip_existing else {}
    records: List[dict] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        checkpoints = EarlierRuns(args.work_dir, seed, args.iters)  # this seed's finished stages
        for path in order_by_dependency(args.configs):
            record = done.get((stem(path), seed)) or run_one(path, seed, args, checkpoints)
            if record['final_ckpt']:
                checkpoints[stem(path)] = record['final_ckpt']
            records.append(record)
            if args.out:  # after every run, so an interrupted check keeps what it measured
                write_json(args.out, records)
            print(f"{record['config']} seed {seed}: {record['status']}, final loss {fmt(record['final'])}, "
                  f"max ratio {record['max_ratio']:.2f}, {record['wall_s']:.0f} s", flush=True)
    records.sort(key=lambda r: (args.configs.index(next(p for p in args.configs if stem(p) == r['config'])),
                                r['seed']))
    print(table(records))
    print()
    print(summary(records))
    if args.out:
        write_json(args.out, records)
    return records


def write_json(path: str, records: List[dict]) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(records, f, indent=1)


if __name__ == '__main__':
    main()
