"""Training throughput of a config: lrfr's mmengine Runner against a plain PyTorch loop, same modules, same batch.

    python tools/analysis_tools/benchmark_train.py CONFIG [--iters 50] [--warmup 10] [--batch B]
        [--amp bf16|fp16] [--channels-last] [--compile] [--device cpu|cuda] [--lr-size H W] [--repeat R]

One synthetic batch is built to the config's shapes: per source of the training set (one, or the branches of
a ``ConcatDataset`` under ``MultiBranchSampler``, in the sampler's quotas), input images at the size its
pipeline produces (``--lr-size`` overrides it for models with an SR head), an HR target ``hr_img`` where the
pipeline keeps one (synthetic LR/HR pairs), a label in the range of that branch's classifier, the branch name;
packed by the real ``PackFaceInputs``. Then, in the same process and on the same model instance:

(a) **lrfr**: ``mmengine.runner.Runner`` with the config's optimiser wrapper, LR schedule, default and custom
    hooks (checkpoint saving off), an ``IterBasedTrainLoop`` and a DataLoader over an in-memory dataset that
    yields the batch's samples (no file I/O, no decoding). Timed by a hook from the start of iteration
    ``warmup`` to the start of iteration ``warmup + iters``: data fetching, collation, the train step and every
    hook of ``iters`` iterations.
(b) **plain**: ``data_preprocessor -> model(mode='loss') -> sum of the 'loss' terms -> backward -> (clip) ->
    optimizer.step -> LR schedulers``, with the optimiser built from the same ``optim_wrapper`` config.

Throughput is samples (LR/HR pairs or LR faces) per second; the ratio lrfr/plain is the Runner's cost.
``--amp`` runs autocast in both (in (a) the wrapper ``tools/train.py --amp`` picks: bf16 without a
``GradScaler``, fp16 with one; GPU only). ``--compile``
compiles the networks (SR head, backbone, neck) in place with ``TrainSpeedHook``, as ``train.py --compile``
does, so both paths run the same compiled kernels and the ratio still isolates the framework.
``--channels-last`` converts the model and makes the data preprocessor emit channels-last inputs (the same
hook). Pretrained ``init_cfg`` entries and ``load_from`` are
dropped: weights do not change the speed. Timings are of one process; on a shared CPU repeat with
``--repeat`` (the median is reported).
"""
import argparse
import inspect
import json
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.hooks import Hook
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from torch.utils.data import Dataset

from lrfr.datasets.samplers.multi_branch_sampler import source_quotas
from lrfr.datasets.transforms.degradations import TINYFACE_MEAN_SIZE
from lrfr.engine.hooks.speed_hook import TrainSpeedHook
from lrfr.engine.optim_wrappers import split_by_part
from lrfr.utils.config_utils import amp_optim_wrapper
from lrfr.utils.checks import to_size_pair
from lrfr.registry import DATASETS, MODELS, PARAM_SCHEDULERS, TRANSFORMS
from lrfr.structures import BRANCH_SYN
from lrfr.utils import register_all_modules

Size = Tuple[int, int]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Training throughput: lrfr Runner vs a plain PyTorch loop')
    parser.add_argument('config', help='training config')
    parser.add_argument('--iters', type=int, default=50, help='timed iterations per path')
    parser.add_argument('--warmup', type=int, default=10, help='untimed iterations first (compile, cudnn)')
    parser.add_argument('--batch', type=int, help="batch size (default: the config's train batch size)")
    parser.add_argument('--amp', choices=['bf16', 'fp16'], help='autocast dtype (GPU only)')
    parser.add_argument('--channels-last', action='store_true', help='channels-last model and inputs')
    parser.add_argument('--compile', action='store_true', help='torch.compile the SR head, backbone and neck')
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        help='default: cuda when available (mmengine trains on the GPU whenever there is one)')
    parser.add_argument('--lr-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size of models with an SR head (default: from the pipeline)')
    parser.add_argument('--repeat', type=int, default=1, help='alternate plain/lrfr runs R times; report medians')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (CPU timing on a shared machine)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the synthetic batch')
    parser.add_argument('--json', help='also write the figures to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args(argv)
    for name in ('iters', 'repeat'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1')
    if args.warmup < 0 or (args.batch is not None and args.batch < 1):
        parser.error('--warmup must be >= 0 and --batch >= 1')
    return args


# -- the synthetic batch -----------------------------------------------------------------------------------------
def pipeline_sizes(pipeline: List[dict]) -> Tuple[Optional[Size], Optional[Size], bool]:
    """``(input size, HR target size, makes pairs)`` of a face pipeline; a size is ``None`` where the config
    does not fix it.

    Follows the size-setting transforms: ``ResizeFace(size)``, ``CenterCrop(crop_size=(w, h))``,
    ``BicubicDownsample(size, hr_size, keep_hr, height_range, upsample_to)`` and ``RandomDegradation(hr_size,
    keep_hr, upsample_to)`` (a variable LR size that ``upsample_to`` or a later ``ResizeFace`` fixes). Loading
    and box crops leave the size unknown.
    """
    size: Optional[Size] = None
    hr: Optional[Size] = None
    pairs = False
    for step in pipeline:
        kind = str(step['type']).split('.')[-1]
        if kind == 'ResizeFace':
            size = to_size_pair(step['size'], 'ResizeFace.size')
        elif kind == 'CenterCrop':
            w, h = to_size_pair(step['crop_size'], 'CenterCrop.crop_size')  # mmcv's (w, h)
            size = (h, w)
        elif kind in ('BicubicDownsample', 'RandomDegradation'):
            if step.get('keep_hr', True):
                pairs = True
                hr = to_size_pair(step['hr_size'], 'hr_size') if step.get('hr_size') else size
            if step.get('upsample_to'):  # interpolated LR: back at a fixed size whatever the LR size
                size = to_size_pair(step['upsample_to'], 'upsample_to')
            elif kind == 'BicubicDownsample' and not step.get('height_range'):
                size = to_size_pair(step.get('size') or TINYFACE_MEAN_SIZE, 'size')
            else:  # drawn LR sizes
                size = None
        elif kind in ('LoadFaceImage', 'CropBBox'):
            size = None
    return size, hr, pairs


def dataset_branch(dataset_cfg: dict) -> str:
    """The branch a dataset config's samples carry: its ``branch`` or the dataset class's default."""
    if 'branch' in dataset_cfg:
        return dataset_cfg['branch']
    param = inspect.signature(DATASETS.get(dataset_cfg['type'])).parameters.get('branch')
    return param.default if param is not None else BRANCH_SYN


def batch_layout(loader_cfg: dict, batch_size: int) -> List[Tuple[dict, int]]:
    """``(dataset config, samples per batch)`` of each source of a train loader config."""
    dataset, sampler = loader_cfg['dataset'], loader_cfg.get('sampler', {})
    if dataset['type'] != 'ConcatDataset':
        return [(dataset, batch_size)]
    sources = list(dataset['datasets'])
    if sampler.get('type') != 'MultiBranchSampler':
        raise ValueError('a ConcatDataset without MultiBranchSampler has no fixed share per source; '
                         'benchmark one source at a time')
    ratio = sampler['source_ratio']
    if isinstance(ratio, dict):
        ratio = [ratio[dataset_branch(d)] for d in sources]
    return list(zip(sources, source_quotas(batch_size, ratio)))


def head_of(model: torch.nn.Module, branch: str) -> Optional[torch.nn.Module]:
    """The classifier that trains on a branch's samples (``None`` for an SR-only model)."""
    if hasattr(model, 'head_for'):
        return model.head_for(branch)
    return getattr(model, 'head', None)


def make_samples(cfg: Config, model: torch.nn.Module, batch_size: int, lr_size: Optional[Size],
                 seed: int) -> Tuple[List[dict], str]:
    """Pipeline outputs ``dict(inputs, data_samples)`` of one batch, and a one-line description of it."""
    rng = np.random.default_rng(seed)
    pack = TRANSFORMS.build(dict(type='PackFaceInputs'))
    sr = getattr(model, 'sr', None)
    samples, parts = [], []
    for dataset, count in batch_layout(cfg.train_dataloader, batch_size):
        size, hr, pairs = pipeline_sizes(dataset.get('pipeline', []))
        if sr is not None:
            size = tuple(lr_size) if lr_size else size
            hr = hr or (tuple(sr.output_size) if pairs else None)  # the HR target is the SR output size
        elif size is None and hasattr(model, 'backbone'):
            size = tuple(model.backbone.input_size)
        if size is None or (pairs and hr is None):
            raise ValueError(f'{cfg.filename}: the pipeline of {dataset["type"]} does not fix the image '
                             'sizes; pass --lr-size H W')
        branch = dataset_branch(dataset)
        head = head_of(model, branch)
        for i in range(count):
            results = dict(img=rng.integers(0, 256, (*size, 3), dtype=np.uint8), branch=branch,
                           img_path=f'synthetic/{branch}/{i}.png', sample_idx=len(samples))
            if head is not None:
                results['gt_label'] = int(rng.integers(0, head.num_classes))
            if hr is not None:
                results['hr_img'] = rng.integers(0, 256, (*hr, 3), dtype=np.uint8)
            samples.append(pack(results))
        hr_text = f', HR {hr[0]}x{hr[1]}' if hr else ''
        parts.append(f'{count} {branch} ({size[0]}x{size[1]}{hr_text})')
    return samples, ' + '.join(parts)


class SampleBank(Dataset):
    """The batch's samples as a dataset (``len`` = batch size, item ``i`` = sample ``i``) and as a batch.

    The data preprocessor normalises each ``hr_img`` in place and the benchmark feeds the same sample objects
    again and again, so the uint8 HR target is put back before each use.
    """

    metainfo: dict = {}  # what the Runner's visualizer asks a dataset for

    def __init__(self, samples: List[dict]) -> None:
        self.samples = samples
        self.hr = {i: s['data_samples'].hr_img for i, s in enumerate(samples) if 'hr_img' in s['data_samples']}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        if index in self.hr:
            self.samples[index]['data_samples'].hr_img = self.hr[index]
        return self.samples[index]

    def batch(self) -> dict:
        """The whole batch, collated as mmengine's ``pseudo_collate`` does, HR targets restored."""
        items = [self[i] for i in range(len(self))]
        return dict(inputs=[s['inputs'] for s in items], data_samples=[s['data_samples'] for s in items])


# -- the two training paths --------------------------------------------------------------------------------------
def synchronize(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


class ThroughputHook(Hook):
    """Start times of iterations ``warmup`` to ``warmup + iters`` (the last one closes the timed window).

    The device is synchronised only at both ends of the window, so the GPU's queue is not drained between
    iterations; the per-iteration intervals are CPU-side (on a GPU they even out over the window).
    """

    priority = 'HIGHEST'

    def __init__(self, warmup: int, iters: int, device: str) -> None:
        self.warmup, self.iters, self.device = warmup, iters, device
        self.stamps: List[float] = []

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if runner.iter in (self.warmup, self.warmup + self.iters):
            synchronize(self.device)
        if self.warmup <= runner.iter <= self.warmup + self.iters:
            self.stamps.append(time.perf_counter())


def run_lrfr(cfg: Config, model: torch.nn.Module, samples: List[dict], args: argparse.Namespace,
             device: str) -> List[float]:
    """Start times of ``args.iters + 1`` consecutive iterations through the mmengine Runner."""
    timer = ThroughputHook(args.warmup, args.iters, device)
    default_hooks = dict(cfg.get('default_hooks', {}), checkpoint=None)  # no saving inside the benchmark
    with tempfile.TemporaryDirectory() as work_dir:
        runner = Runner(
            model=model,
            work_dir=work_dir,
            train_dataloader=dict(batch_size=len(samples), num_workers=0,
                                  sampler=dict(type='InfiniteSampler', shuffle=False),
                                  dataset=SampleBank(samples)),
            optim_wrapper=optim_wrapper_cfg(cfg, args.amp),
            param_scheduler=cfg.get('param_scheduler'),
            # one iteration more than timed: the timer stops at the start of the last one
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=args.warmup + args.iters + 1,
                           val_interval=10 ** 9),
            default_hooks=default_hooks,
            custom_hooks=[*cfg.get('custom_hooks', []), timer],
            env_cfg=dict(cudnn_benchmark=cfg.get('env_cfg', {}).get('cudnn_benchmark', False)),
            log_processor=cfg.get('log_processor'),
            log_level='WARNING',
            default_scope='lrfr',
            randomness=dict(seed=args.seed),
            experiment_name=f'benchmark_train_{time.time_ns()}',
        )
        runner.train()
    return timer.stamps


def optim_wrapper_cfg(cfg: Config, amp: Optional[str]) -> dict:
    wrapper = ConfigDict(cfg.optim_wrapper)
    return amp_optim_wrapper(wrapper, 'bfloat16' if amp == 'bf16' else 'float16') if amp else wrapper


def run_plain(cfg: Config, model: torch.nn.Module, samples: List[dict], args: argparse.Namespace,
              device: str) -> List[float]:
    """Start times of ``args.iters + 1`` iterations of a hand-written loop over the same modules and batch."""
    optimizer = build_optim_wrapper(model, ConfigDict(cfg.optim_wrapper, type='OptimWrapper', clip_grad=None)).optimizer
    # A scheduler without `end` (e.g. the demo's cosine) ends at the run's max_iters: the Runner fills it in, so
    # this loop does the same for the steps it takes (a Runner run of that many iterations follows this LR curve).
    steps = args.warmup + args.iters
    schedulers = [PARAM_SCHEDULERS.build(dict({'end': steps}, **s, optimizer=optimizer)
                                         if not s.get('by_epoch', True) else dict(s, optimizer=optimizer))
                  for s in cfg.get('param_scheduler', [])]
    clip = dict(cfg.optim_wrapper.get('clip_grad') or {})  # mmengine's: type 'norm' (default) or 'value'
    clip_grad = torch.nn.utils.clip_grad_value_ if clip.pop('type', 'norm') == 'value' else \
        torch.nn.utils.clip_grad_norm_
    part_clip = clip.pop('parts', None) or {}  # PartClipOptimWrapper: each part to its own norm, then the rest
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(args.amp)
    scaler = torch.amp.GradScaler(device) if args.amp == 'fp16' else None
    bank = SampleBank(samples)
    params = [p for p in model.parameters() if p.requires_grad]
    clip_groups = [(params_of, clip if name == 'rest' else dict(clip, **part_clip[name]))
                   for name, params_of in split_by_part(model, params, list(part_clip)).items()]
    model.train()
    stamps = []
    for it in range(args.warmup + args.iters):
        if it == args.warmup:
            synchronize(device)
        if it >= args.warmup:
            stamps.append(time.perf_counter())
        data = model.data_preprocessor(bank.batch(), True)
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
            losses = model(data['inputs'], data['data_samples'], mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if clip:
            for params_of, kwargs in clip_groups:
                clip_grad(params_of, **kwargs)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    synchronize(device)
    stamps.append(time.perf_counter())
    return stamps


# -- model ------------------------------------------------------------------------------------------------------
def drop_pretrained(node):
    """A config node without ``init_cfg`` entries that load checkpoints (they do not change the speed)."""
    if isinstance(node, dict):
        return {k: drop_pretrained(v) for k, v in node.items()
                if not (k == 'init_cfg' and isinstance(v, dict) and v.get('type') == 'Pretrained')}
    if isinstance(node, (list, tuple)):
        return type(node)(drop_pretrained(v) for v in node)
    return node


def build_model(cfg: Config, args: argparse.Namespace, device: str) -> torch.nn.Module:
    model = MODELS.build(drop_pretrained(cfg.model.to_dict()))
    model.to(device)
    speed = TrainSpeedHook(channels_last=args.channels_last, compile=args.compile)  # what --channels-last/--compile do
    if args.channels_last:
        speed.convert_channels_last(model)
    if args.compile:
        speed.compile_parts(model)
    return model


def main(argv: Optional[List[str]] = None) -> dict:
    """Run both paths and print (and return) the figures."""
    args = parse_args(argv)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is available')
    if device == 'cpu' and torch.cuda.is_available():
        raise SystemExit('--device cpu on a GPU machine: mmengine would still train on the GPU; '
                         'run with CUDA_VISIBLE_DEVICES= to time the CPU')
    if args.amp and device == 'cpu':
        raise SystemExit('--amp needs a GPU: lrfr keeps CPU runs in fp32 (tools/train.py --amp does the same), '
                         'bf16 on CPUs without AVX512-BF16 being many times slower')
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    batch_size = args.batch or cfg.train_dataloader.batch_size
    torch.manual_seed(args.seed)
    model = build_model(cfg, args, device)
    samples, layout = make_samples(cfg, model, batch_size, args.lr_size, args.seed)

    runs: Dict[str, List[List[float]]] = dict(plain=[], lrfr=[])
    for _ in range(args.repeat):  # alternate, so slow phases of a shared machine hit both paths
        runs['plain'].append(run_plain(cfg, model, samples, args, device))
        runs['lrfr'].append(run_lrfr(cfg, model, samples, args, device))
    figures = dict(config=args.config, batch=batch_size, layout=layout, device=device, iters=args.iters,
                   warmup=args.warmup, repeat=args.repeat, amp=args.amp, channels_last=args.channels_last,
                   compile=args.compile, torch=torch.__version__,
                   hardware=torch.cuda.get_device_name() if device == 'cuda'
                   else f'CPU, {torch.get_num_threads()} threads')
    for path, stamps in runs.items():
        windows = [s[-1] - s[0] for s in stamps]
        steps = [b - a for s in stamps for a, b in zip(s, s[1:])]
        figures[path] = dict(samples_per_s=args.iters * batch_size / statistics.median(windows),
                             median_step_samples_per_s=batch_size / statistics.median(steps),
                             window_seconds=windows)
    figures['ratio'] = figures['lrfr']['samples_per_s'] / figures['plain']['samples_per_s']
    figures['median_step_ratio'] = (figures['lrfr']['median_step_samples_per_s'] /
                                    figures['plain']['median_step_samples_per_s'])
    print(f'config : {args.config}')
    print(f'device : {device} ({figures["hardware"]}), torch {torch.__version__}; amp={args.amp}, '
          f'channels_last={args.channels_last}, compile={args.compile}')
    print(f'batch  : {batch_size} = {layout}; warm-up {args.warmup}, timed {args.iters} iterations x '
          f'{args.repeat} repeat(s)')
    print('path   samples/s (median window)   samples/s (median step)')
    for path in runs:
        row = figures[path]
        print(f'{path:6s} {row["samples_per_s"]:24.1f} {row["median_step_samples_per_s"]:24.1f}')
    print(f'ratio  lrfr/plain = {figures["ratio"]:.3f} (windows), {figures["median_step_ratio"]:.3f} (steps)')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(figures, f, indent=2)
    return figures


if __name__ == '__main__':
    main(sys.argv[1:])
