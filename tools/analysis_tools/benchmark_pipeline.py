"""Per-worker cost of a config's training pipelines, stage by stage, and the DataLoader workers one GPU needs.

    python tools/analysis_tools/benchmark_pipeline.py
    python tools/analysis_tools/benchmark_pipeline.py --num-syn 2000 --num-nat 4000 --repeat 3 --json out.json

For every branch of the config's training set (the CSRI configs: a ``ConcatDataset`` of
the synthetic CelebA LR/HR branch and the native TinyFace branch, each with its own
``pipeline``), the tool writes a synthetic tree in the dataset's real layout (CelebA:
``Img/img_align_celeba/NNNNNN.jpg`` 178x218 JPEGs with ``Anno/identity_CelebA.txt`` and
``Eval/list_eval_partition.txt``, ~20 images per identity; TinyFace:
``Training_Set/<id>/<id>_<n>.jpg`` faces 6-32 px high), builds the dataset from the config
(only ``data_root`` replaced), packs it (``PackedFaceDataset``) and writes it as RecordIO
(``MXFaceDataset``), and times, in ONE process with one thread (``cv2.setNumThreads(0)``,
``torch.set_num_threads(1)``: what one DataLoader worker costs):

* each stage per image: ``get_data_info`` (the dataset's own work: the data-info copy, plus
  the pixel copy for a pack, the ``pread`` and JPEG decode for RecordIO), every transform of
  the pipeline, and ``pseudo_collate`` of a batch (mmengine's default ``collate_fn``);
* the whole path through a ``DataLoader`` with ONE worker process (the stages plus the
  worker loop and sending the batch to the main process through shared memory), with
  mmengine's ``pseudo_collate`` and with lrfr's ``face_collate`` (one shared-memory
  segment per batch for the faces instead of one per face): the wall-clock rate, the
  worker's CPU time per image (from ``/proc/<pid>/stat``: Linux) and the main process's
  (receiving the batch).

Stages are timed by the wall clock; the in-process total is also given by CPU time. The
worker count uses the CPU-time rates (images per CPU second of one worker), which a shared
machine distorts much less: what other jobs take shows in wall time, not in CPU time
(shared caches still slow a process down a little).

``--random-lr`` adds the synthetic branch with ``BicubicDownsample``'s fixed LR size replaced
by TinyFace-like drawn heights (``height_range=(6, 32)``); ``--batched`` adds every branch
with ``batched=True`` in its ``BicubicDownsample`` / ``ResizeFace`` (the resizes are then done
on the whole batch by ``FaceDataPreprocessor``, whose cost per image on this CPU is printed
too). Each figure is the best of ``--repeat`` passes over a warm page cache.

The worker count for a GPU step of ``--target`` samples/s (default 2,700, the reference
rate of issue 12 for the full-size CSRI step on one H200; not measured here) with the
config's ``MultiBranchSampler`` ratio is ``sum over branches of target x share / rate``.
"""
import argparse
import copy
import json
import math
import os
import os.path as osp
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # analysis_tools/, for benchmark_data's generator

from benchmark_data import make_synthetic_tinyface  # noqa: E402
from lrfr.datasets import MXFaceDataset, PackedFaceDataset  # noqa: E402
from lrfr.datasets.converters import pack_dataset  # noqa: E402
from lrfr.datasets.converters.recordio import write_face_rec  # noqa: E402
from lrfr.registry import DATASETS  # noqa: E402
from lrfr.utils import register_all_modules  # noqa: E402
from lrfr.utils.config_utils import load_config  # noqa: E402

DEFAULT_CONFIG = 'configs/csri/csri_vdsr-centreface_1xb256_celeba-tinyface.py'
SOURCES = ('files', 'packed', 'rec')
COLLATES = ('pseudo_collate', 'face_collate')
#: Key of the pass's process CPU time in :func:`time_stages`' result (not a stage).
CPU_KEY = 'cpu'
#: The issue's reference GPU rate (samples/s of the full-size CSRI step on one H200), not a measurement.
REFERENCE_RATE = 2700.0
#: CelebA's aligned faces (img_align_celeba): 178 wide, 218 high.
CELEBA_SIZE = (218, 178)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Per-worker, per-stage cost of the training pipelines')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='config whose training pipelines are timed')
    parser.add_argument('--num-syn', type=int, default=1000, help='images in the synthetic CelebA tree')
    parser.add_argument('--num-nat', type=int, default=2000, help='images in the synthetic TinyFace tree')
    parser.add_argument('--sources', nargs='+', default=list(SOURCES), choices=SOURCES,
                        help='where the images are read from')
    parser.add_argument('--random-lr', action='store_true',
                        help='also time the synthetic branch with drawn LR heights (6-32 px)')
    parser.add_argument('--batched', action='store_true',
                        help='also time the synthetic branch with the batched degradation')
    parser.add_argument('--no-loader', action='store_true', help='skip the 1-worker DataLoader passes')
    parser.add_argument('--repeat', type=int, default=2, help='passes per figure (best kept)')
    parser.add_argument('--batch-size', type=int, default=128, help='images per collated batch')
    parser.add_argument('--target', type=float, default=REFERENCE_RATE,
                        help='GPU step rate to feed, samples/s (default: issue 12\'s reference)')
    parser.add_argument('--json', help='write every figure to this file')
    parser.add_argument('--work-dir', help='where to write the trees and packs '
                                           '(default: a temporary folder, removed afterwards)')
    args = parser.parse_args(argv)
    for name in ('num_syn', 'num_nat', 'repeat', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    return args


def make_synthetic_celeba(root: str, num_images: int, seed: int = 0, per_identity: int = 20,
                          quality: int = 90) -> str:
    """Write ``num_images`` CelebA-like aligned faces in the official layout under ``root``.

    ``Img/img_align_celeba/000001.jpg ...`` are 178x218 JPEGs (CelebA's aligned size) of a
    smooth random texture over a vertical gradient, at JPEG quality 90, which gives files
    of ~6 kB (the real set: ~7 kB, 1.4 GB for 202,599 images); ``per_identity`` consecutive
    images share an identity (CelebA: 202,599 / 10,177 ~ 20); all in partition 0.
    """
    rng = np.random.default_rng(seed)
    img_dir = osp.join(root, 'Img', 'img_align_celeba')
    os.makedirs(img_dir, exist_ok=True)
    h, w = CELEBA_SIZE
    gradient = np.linspace(0, 120, h, dtype=np.float32)[:, None, None]
    names = []
    for i in range(num_images):
        noise = rng.integers(0, 128, (h, w, 3), dtype=np.uint8)
        img = (cv2.GaussianBlur(noise, (0, 0), 2.0) + gradient).clip(0, 255).astype(np.uint8)
        name = f'{i + 1:06d}.jpg'
        cv2.imwrite(osp.join(img_dir, name), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        names.append(name)
    for folder, fname, rows in (
            ('Anno', 'identity_CelebA.txt', [f'{n} {i // per_identity + 1}' for i, n in enumerate(names)]),
            ('Eval', 'list_eval_partition.txt', [f'{n} 0' for n in names])):
        os.makedirs(osp.join(root, folder), exist_ok=True)
        with open(osp.join(root, folder, fname), 'w') as f:
            f.write('\n'.join(rows) + '\n')
    return root


def branch_datasets(cfg, config_path: str) -> Dict[str, dict]:
    """``{branch: dataset config}`` of the config's training set (one entry for a single dataset)."""
    dataset = cfg.get('train_dataloader', {}).get('dataset')
    if dataset is None:
        raise KeyError(f'{config_path}: no train_dataloader.dataset to take the pipelines from')
    parts = dataset['datasets'] if dataset.get('type') == 'ConcatDataset' else [dataset]
    out = {}
    for part in parts:
        branch = part.get('branch', 'nat')
        if branch in out:
            raise ValueError(f'{config_path}: two training datasets of branch {branch!r}')
        out[branch] = copy.deepcopy(dict(part))
    return out


def with_transform_args(pipeline: List[dict], config_path: str, types: Sequence[str], **changes) -> List[dict]:
    """``pipeline`` with its steps of ``types`` updated by ``changes`` (at least one such step required).

    ``height_range=...`` drops a fixed ``size`` (they exclude each other in ``BicubicDownsample``).
    """
    out = copy.deepcopy(list(pipeline))
    steps = [t for t in out if t.get('type') in types]
    if not steps:
        raise ValueError(f'{config_path}: the pipeline has no {" or ".join(types)} step to vary')
    for step in steps:
        if 'height_range' in changes:
            step.pop('size', None)
        step.update(changes)
    return out


def write_tree(dataset_type: str, root: str, num_images: int) -> str:
    """A synthetic tree for ``dataset_type`` (CelebADataset or TinyFaceDataset) in its real layout."""
    if dataset_type == 'CelebADataset':
        return make_synthetic_celeba(root, num_images)
    if dataset_type == 'TinyFaceDataset':
        return make_synthetic_tinyface(root, num_images, heights=(6, 32))
    raise ValueError(f'benchmark_pipeline: no synthetic tree for dataset type {dataset_type!r} '
                     '(CelebADataset and TinyFaceDataset are generated)')


def build_sources(ds_cfg: dict, root: str, work_dir: str, name: str,
                  sources: Sequence[str]) -> Dict[str, object]:
    """The dataset of ``ds_cfg`` over ``root`` read from each of ``sources`` (same pipeline)."""
    files = DATASETS.build(dict(ds_cfg, data_root=root))
    out = {'files': files}
    branch = ds_cfg.get('branch', 'nat')
    if 'packed' in sources:
        index = pack_dataset(files, osp.join(work_dir, f'{name}_packed'), progress=False)
        out['packed'] = PackedFaceDataset(index, branch=branch, pipeline=ds_cfg['pipeline'])
    if 'rec' in sources:
        infos = [files.get_data_info(i) for i in range(len(files))]
        rec = write_face_rec([(info['img_path'], info['gt_label']) for info in infos],
                             osp.join(work_dir, f'{name}_rec'))
        out['rec'] = MXFaceDataset(osp.dirname(rec), branch=branch, pipeline=ds_cfg['pipeline'])
    return {s: out[s] for s in sources}


def stage_names(dataset) -> List[str]:
    """``get_data_info``, the pipeline's transforms (by class name, numbered when repeated), ``collate``."""
    names, seen = ['get_data_info'], {}
    for t in dataset.pipeline.transforms:
        base = type(t).__name__
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f'{base}#{seen[base]}')
    return names + ['collate']


def time_stages(dataset, batch_size: int) -> Dict[str, float]:
    """Seconds per image of each stage (see :func:`stage_names`) over one pass of ``dataset``.

    Wall-clock time per stage; under :data:`CPU_KEY` the pass's process CPU time per image
    (the same work, less what other processes on a shared machine took from it).
    """
    from mmengine.dataset import pseudo_collate
    names = stage_names(dataset)
    totals = dict.fromkeys(names, 0.0)
    transforms = list(zip(names[1:-1], dataset.pipeline.transforms))
    clock = time.perf_counter
    batch = []
    cpu_start = time.process_time()
    for idx in range(len(dataset)):
        start = clock()
        results = dataset.get_data_info(idx)
        now = clock()
        totals['get_data_info'] += now - start
        for name, transform in transforms:
            start = now
            results = transform(results)
            now = clock()
            totals[name] += now - start
        batch.append(results)
        if len(batch) == batch_size or idx == len(dataset) - 1:
            start = clock()
            pseudo_collate(batch)
            totals['collate'] += clock() - start
            batch = []
    totals[CPU_KEY] = time.process_time() - cpu_start
    return {name: seconds / len(dataset) for name, seconds in totals.items()}


def _worker_init(pid_slot, _: int) -> None:
    """Single-threaded worker that tells the main process its pid (to read its CPU time)."""
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    pid_slot.value = os.getpid()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc/<pid>/stat``, clock ticks)."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()  # after "pid (comm)": state is field 3, utime 14, stime 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def loader_rate(dataset, batch_size: int, repeat: int, collate: str) -> Dict[str, float]:
    """``dataset`` through a ``DataLoader`` with ONE persistent worker process: rate and CPU per image.

    ``collate`` is ``pseudo_collate`` (mmengine's default) or ``face_collate``; no pinning.
    After an untimed pass (the worker's start), ``repeat`` passes give ``rate`` (images/s,
    wall clock), ``worker_cpu`` (the worker's CPU seconds per image, from its
    ``/proc/<pid>/stat``) and ``main_cpu`` (this process's CPU seconds per image:
    receiving the batches), each the best of the passes. On a shared machine the CPU
    figures are the per-worker cost; the wall rate also counts what other jobs took.
    """
    import functools
    import multiprocessing

    from mmengine.registry import FUNCTIONS
    pid = multiprocessing.Value('i', 0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=1, persistent_workers=True,
                                         collate_fn=FUNCTIONS.get(collate),
                                         worker_init_fn=functools.partial(_worker_init, pid))
    best: Dict[str, float] = {}
    for k in range(repeat + 1):
        worker = process_cpu_seconds(pid.value) if pid.value else 0.0
        start, cpu = time.perf_counter(), time.process_time()
        for _ in loader:
            pass
        wall, main = time.perf_counter() - start, time.process_time() - cpu
        worker = process_cpu_seconds(pid.value) - worker
        if k == 0:
            continue  # the worker's start
        run = dict(rate=len(dataset) / wall, worker_cpu=max(worker, 1e-9) / len(dataset), main_cpu=main / len(dataset))
        for key, value in run.items():
            best[key] = max(best.get(key, value), value) if key == 'rate' else min(best.get(key, value), value)
    del loader  # ends the worker
    return best


def best_stages(dataset, batch_size: int, repeat: int) -> Dict[str, float]:
    """Per-stage seconds/image of the fastest of ``repeat`` passes (after a warm-up pass)."""
    time_stages(dataset, batch_size)
    runs = [time_stages(dataset, batch_size) for _ in range(repeat)]
    return min(runs, key=wall_total)


def wall_total(stages: Dict[str, float]) -> float:
    """Wall seconds per image of all stages (the CPU-time entry left out)."""
    return sum(v for k, v in stages.items() if k != CPU_KEY)


def batch_resize_cost(dataset, batch_size: int, repeat: int) -> float:
    """Seconds per image of ``FaceDataPreprocessor``'s batched resizes of one batch of ``dataset`` on this CPU."""
    from mmengine.dataset import pseudo_collate

    from lrfr.models.data_preprocessors.batch_resize import apply_batch_resize
    batch = pseudo_collate([dataset[i] for i in range(min(batch_size, len(dataset)))])
    times = []
    for _ in range(repeat + 1):
        samples = [s.clone() for s in batch['data_samples']]  # it sets hr_img on them
        start = time.perf_counter()
        apply_batch_resize(list(batch['inputs']), samples)
        times.append(time.perf_counter() - start)
    return min(times[1:]) / len(batch['inputs'])


def branch_shares(cfg) -> Dict[str, float]:
    """Each branch's share of a training batch, from the config's ``MultiBranchSampler`` (else one branch)."""
    sampler = cfg.train_dataloader.get('sampler', {})
    ratio = sampler.get('source_ratio') if sampler.get('type') == 'MultiBranchSampler' else None
    if not ratio:
        return {}
    total = float(sum(ratio.values()))
    return {branch: value / total for branch, value in ratio.items()}


def workers_needed(target: float, shares: Dict[str, float], rates: Dict[str, float]) -> Dict[str, float]:
    """Workers (fractional) each branch needs to deliver its share of ``target`` samples/s, and their sum.

    A worker builds whole batches mixing the branches, so its time per batch is the sum of
    the branches' times: ``target x share / rate`` adds up over the branches.
    """
    need = {branch: target * share / rates[branch] for branch, share in shares.items()}
    need['together'] = sum(need.values())
    return need


def worker_combinations(variants: Sequence[Tuple[str, str, dict]], branches: Sequence[str]) -> List[Dict[str, str]]:
    """Which variant feeds each branch, per row of the worker table: the plain pipelines, each other
    variant of a branch with the other branches plain, and all batched variants together."""
    plain = {b: b for b in branches}
    combos = [plain]
    for label, branch, _ in variants:
        if label != branch and branch in plain and not label.endswith('batched'):
            combos.append(dict(plain, **{branch: label}))
    batched = {branch: label for label, branch, _ in variants if label.endswith('batched')}
    if batched:
        combos.append(dict(plain, **batched))
    return combos


def print_stage_table(label: str, stages: Dict[str, Dict[str, float]]) -> None:
    sources = list(stages)
    print(f'\n{label}: microseconds per image (share of the total), one process, one thread')
    print('| stage | ' + ' | '.join(sources) + ' |')
    print('|---|' + '---:|' * len(sources))
    totals = {s: wall_total(stages[s]) for s in sources}
    names = list(dict.fromkeys(n for s in sources for n in stages[s] if n != CPU_KEY))
    for name in names:
        cells = [f'{stages[s][name] * 1e6:.0f} ({100 * stages[s][name] / totals[s]:.0f} %)'
                 if name in stages[s] else '-' for s in sources]
        print(f'| {name} | ' + ' | '.join(cells) + ' |')
    print('| **total** | ' + ' | '.join(f'{totals[s] * 1e6:.0f}' for s in sources) + ' |')
    print('| img/s, in-process | ' + ' | '.join(f'{1 / totals[s]:.0f}' for s in sources) + ' |')
    print('| img/s, in-process, by CPU time | ' + ' | '.join(f'{1 / stages[s][CPU_KEY]:.0f}' for s in sources)
          + ' |')


def run(args: argparse.Namespace, work_dir: str) -> dict:
    register_all_modules()
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    branches = branch_datasets(cfg, args.config)
    counts = {'CelebADataset': args.num_syn, 'TinyFaceDataset': args.num_nat}
    variants: List[Tuple[str, str, dict]] = []  # (label, branch, dataset config)
    for branch, ds_cfg in branches.items():
        variants.append((branch, branch, ds_cfg))
        if branch == 'syn' and args.random_lr:
            variants.append(('syn, LR 6-32 px', branch, dict(ds_cfg, pipeline=with_transform_args(
                ds_cfg['pipeline'], args.config, ['BicubicDownsample'], height_range=(6, 32)))))
        if args.batched:
            variants.append((f'{branch}, batched', branch, dict(ds_cfg, pipeline=with_transform_args(
                ds_cfg['pipeline'], args.config, ['BicubicDownsample', 'ResizeFace'], batched=True))))
    roots = {}
    report = dict(config=args.config, target=args.target, sources=list(args.sources), variants={},
                  load_average=os.getloadavg(), cpus=os.cpu_count())
    print(f'{args.config}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start')
    for label, branch, ds_cfg in variants:
        if branch not in roots:
            roots[branch] = write_tree(ds_cfg['type'], osp.join(work_dir, branch), counts.get(ds_cfg['type'], 0))
        datasets = build_sources(ds_cfg, roots[branch], work_dir, label.replace(' ', '_').replace(',', ''),
                                 args.sources)
        stages = {s: best_stages(d, args.batch_size, args.repeat) for s, d in datasets.items()}
        first = next(iter(datasets.values()))
        entry = dict(branch=branch, images=len(first), stages=stages,
                     in_process={s: 1 / v[CPU_KEY] for s, v in stages.items()},
                     in_process_wall={s: 1 / wall_total(v) for s, v in stages.items()})
        if not args.no_loader:
            for collate in COLLATES:
                runs = {s: loader_rate(d, args.batch_size, args.repeat, collate) for s, d in datasets.items()}
                entry[f'{collate}_wall'] = {s: run['rate'] for s, run in runs.items()}
                entry[collate] = {s: 1 / run['worker_cpu'] for s, run in runs.items()}
                entry[f'{collate}_main_cpu_s_per_image'] = {s: run['main_cpu'] for s, run in runs.items()}
        if label.endswith('batched'):
            entry['preprocessor_cpu_s_per_image'] = batch_resize_cost(first, args.batch_size,
                                                                      args.repeat)
        if 'files' in datasets:
            files = datasets['files']
            entry['mean_file_bytes'] = float(np.mean([osp.getsize(files.get_data_info(i)['img_path'])
                                                      for i in range(len(files))]))
        report['variants'][label] = entry
        size = f', mean JPEG {entry["mean_file_bytes"]:.0f} B' if 'mean_file_bytes' in entry else ''
        print_stage_table(f'{label} ({ds_cfg["type"]}, {entry["images"]} images{size})', stages)
        for collate in COLLATES if not args.no_loader else ():
            print(f'| img/s, DataLoader 1 worker, {collate} | ' + ' | '.join(
                f'{entry[collate + "_wall"][s]:.0f}' for s in stages) + ' |')
            print(f'| img/s per worker CPU second, {collate} | ' + ' | '.join(
                f'{entry[collate][s]:.0f}' for s in stages) + ' |')
            print(f'| main-process CPU us/img, {collate} | ' + ' | '.join(
                f'{entry[collate + "_main_cpu_s_per_image"][s] * 1e6:.0f}' for s in stages) + ' |')
        if 'preprocessor_cpu_s_per_image' in entry:
            print(f'the batched resizes in FaceDataPreprocessor on this CPU, one thread: '
                  f'{entry["preprocessor_cpu_s_per_image"] * 1e6:.0f} us per image (on the training device, '
                  'not in the workers)')

    shares = branch_shares(cfg) or {branch: 1.0 / len(branches) for branch in branches}
    report['shares'] = shares
    kinds = ['in_process'] if args.no_loader else ['face_collate', 'pseudo_collate', 'in_process']
    print(f'\nDataLoader workers for {args.target:.0f} samples/s (shares {shares}), from images per CPU second: '
          f'per branch and together from the {kinds[0]} rates' + (
              '' if args.no_loader else '; together also from the pseudo_collate rates and from the in-process '
                                        'rates (the pipeline alone, no transfer)') + ':')
    print('| pipelines | source | ' + ' | '.join(shares) + ' | together | '
          + ' | '.join(f'together, {k}' for k in kinds[1:]) + (' |' if kinds[1:] else ''))
    print('|---|---|' + '---:|' * (len(shares) + len(kinds)))
    report['workers'] = {}
    for combo in worker_combinations(variants, list(shares)):
        name = ' + '.join(combo[b] for b in shares)
        for source in args.sources:
            need = {k: workers_needed(args.target, shares, {b: report['variants'][combo[b]][k][source]
                                                            for b in shares}) for k in kinds}
            report['workers'][f'{name} / {source}'] = need
            main = need[kinds[0]]
            print(f'| {name} | {source} | ' + ' | '.join(f'{main[b]:.1f}' for b in shares)
                  + f' | {main["together"]:.1f} (= {math.ceil(main["together"])}) | '
                  + ' | '.join(f'{need[k]["together"]:.1f}' for k in kinds[1:]) + (' |' if kinds[1:] else ''))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    return report


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
        return run(args, args.work_dir)
    with tempfile.TemporaryDirectory(prefix='lrfr_bench_pipeline_') as work_dir:
        return run(args, work_dir)


if __name__ == '__main__':
    main()
