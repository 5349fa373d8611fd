"""Count the parameters and FLOPs of a model from a config, a registered module, or the whole model zoo.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--cfg-options model.flip_test=False]
    python tools/analysis_tools/get_flops.py --model VDSR --model-args "output_size=(112,96)" --shape 28 24
    python tools/analysis_tools/get_flops.py --zoo          # the table of docs/model_zoo.md

FLOPs follow mmengine's analyser (``mmengine.analysis``, the counter behind
``get_model_complexity_info``): one fused multiply-add counts as one FLOP, for a batch
of one image in eval mode. Operators it has no rule for (PReLU, element-wise adds,
bicubic interpolation) count zero and are listed. ``--shape`` is the input image:
the LR size for an SR head or an SR-FR model, the face size for a backbone. For a
config it defaults to the size the config's test pipeline gives the model (the SR
head's input for SR models: e.g. the demo's native faces are resized to 56x48 before
the SR head), found by running the pipeline's transforms after image loading on two
blank images of different sizes; when that size depends on the image (no resize in
the pipeline) or there is no test pipeline, it falls back to the model's declared
``input_size`` (backbones) or ``output_size`` (SR heads), and says so.
"""
import argparse
import os.path as osp
import sys
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.print_helper import complexity_stats_table
from mmengine.config import Config, DictAction
from torch import nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/, for _tool_args

from _tool_args import add_cfg_options, add_debug, report_errors  # noqa: E402
from lrfr.errors import ConfigError  # noqa: E402
from lrfr.registry import MODELS  # noqa: E402
from lrfr.utils import register_all_modules  # noqa: E402
from lrfr.utils.config_utils import load_config  # noqa: E402

#: The model zoo of docs/model_zoo.md: (name, paper, config, input (H, W)). SR heads take 28x24 LR faces
#: to the 112x96 FR input size (x4, as CSRI's VDSR); their cost does not depend on the LR size because
#: the network runs at the output size.
ZOO: List[Tuple[str, str, dict, Tuple[int, int]]] = [
    ('SRCNN 9-1-5', 'Dong et al., ECCV 2014', dict(type='SRCNN'), (28, 24)),
    ('SRCNN 9-5-5', 'Dong et al., ECCV 2014', dict(type='SRCNN', kernel_sizes=(9, 5, 5)), (28, 24)),
    ('VDSR', 'Kim et al., CVPR 2016', dict(type='VDSR'), (28, 24)),
    ('DRRN B1U9', 'Tai et al., CVPR 2017', dict(type='DRRN', num_units=9), (28, 24)),
    ('DRRN B1U25', 'Tai et al., CVPR 2017', dict(type='DRRN'), (28, 24)),
    ('CentreFaceNet', 'Wen et al., ECCV 2016', dict(type='CentreFaceNet'), (112, 96)),
    ('SphereFaceNet-20 (sphere20a)', 'Liu et al., CVPR 2017', dict(type='SphereFaceNet', depth=20), (112, 96)),
    ('SphereFaceNet-64 (sphere64a)', 'Liu et al., CVPR 2017', dict(type='SphereFaceNet', depth=64), (112, 96)),
    ('VGGFace', 'Parkhi et al., BMVC 2015', dict(type='VGGFace'), (224, 224)),
    ('VGGFace', 'Parkhi et al., BMVC 2015', dict(type='VGGFace', input_size=(112, 96)), (112, 96)),
    ('DeepID2', 'Sun et al., NIPS 2014', dict(type='DeepID2'), (55, 47)),
    ('DeepID2', 'Sun et al., NIPS 2014', dict(type='DeepID2', input_size=(112, 96)), (112, 96)),
    ('IResNet-18', 'Deng et al., CVPR 2019', dict(type='IResNet', depth=18), (112, 112)),
    ('IResNet-34', 'Deng et al., CVPR 2019', dict(type='IResNet', depth=34), (112, 112)),
    ('IResNet-50', 'Deng et al., CVPR 2019', dict(type='IResNet', depth=50), (112, 112)),
    ('IResNet-50', 'Deng et al., CVPR 2019', dict(type='IResNet', depth=50, input_size=(112, 96)), (112, 96)),
    ('IResNet-100', 'Deng et al., CVPR 2019', dict(type='IResNet', depth=100), (112, 112)),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Parameters and FLOPs of an lrfr model')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('config', nargs='?', help='config file; its `model` is measured')
    source.add_argument('--model', help='registered module name, e.g. VDSR, CentreFaceNet')
    source.add_argument('--zoo', action='store_true', help='print the model-zoo table (Markdown)')
    parser.add_argument('--model-args', nargs='+', action=DictAction, default={},
                        help='constructor arguments for --model, e.g. depth=20 "input_size=(112,96)"')
    add_cfg_options(parser)
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), help='input image height and width')
    parser.add_argument('--in-channels', type=int, default=3, help='input image channels')
    parser.add_argument('--show-table', action='store_true', help='also print the per-module table')
    add_debug(parser)
    return parser.parse_args()


def default_shape(model: nn.Module) -> Tuple[int, int]:
    """The input size a model declares: its (or its backbone's) ``input_size``, else an SR head's ``output_size``."""
    for part in (model, getattr(model, 'backbone', None)):
        if part is not None and hasattr(part, 'input_size'):
            return tuple(part.input_size)
    if hasattr(model, 'output_size'):
        return tuple(model.output_size)
    raise ValueError(f'{type(model).__name__} declares no input_size; give the image size with --shape H W')


#: Blank images run through a test pipeline: the input size is the pipeline's only when both give it.
PROBE_SIZES = ((37, 29), (131, 103))


def pipeline_input_shape(pipeline: Sequence[dict], which: str = 'test') -> Tuple[Optional[Tuple[int, int]], str]:
    """The ``(H, W)`` of the ``inputs`` a test pipeline packs for the model, whatever the image, and how it
    was found; ``(None, reason)`` when it depends on the image or the pipeline cannot run on a blank image.

    The transforms after the loading ones (``Load*``) run on blank ``uint8`` images of
    :data:`PROBE_SIZES`; a fixed output size means the pipeline resizes every face to it.
    """
    from mmengine.dataset import Compose
    steps = [t for t in pipeline if not str(t.get('type', '')).startswith('Load')]
    if not steps:
        return None, f'the {which} pipeline only loads images'
    try:
        compose = Compose(steps)
        shapes = set()
        for h, w in PROBE_SIZES:
            img = np.zeros((h, w, 3), np.uint8)
            out = compose(dict(img=img, img_shape=(h, w), ori_shape=(h, w), gt_label=0, img_path='<blank>'))
            shapes.add(tuple(int(x) for x in out['inputs'].shape[-2:]))
    except Exception as exc:  # any transform may need what a blank image lacks (a bbox, ...)
        return None, f'the {which} pipeline does not run on a blank image ({type(exc).__name__}: {exc})'
    if len(shapes) != 1:
        return None, f"the {which} pipeline keeps each image's own size (no resize)"
    return shapes.pop(), f"the config's {which} pipeline output"


def config_pipeline(cfg: Config) -> Tuple[Optional[Sequence[dict]], str]:
    """The pipeline that feeds the model at test time, and its dataloader's name: the test dataset's, else
    (an SR-only config has no identity test) the validation or the training one. The first dataset's for
    a ``ConcatDataset``."""
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset') or {}
        while 'pipeline' not in dataset and dataset.get('datasets'):
            dataset = dataset['datasets'][0]
        if dataset.get('pipeline'):
            return dataset['pipeline'], key.split('_')[0]
    return None, ''


def complexity(model: nn.Module, shape: Tuple[int, int], in_channels: int = 3,
               show_table: bool = False) -> Dict[str, object]:
    """Parameters and FLOPs (multiply-adds) of ``model`` on one ``(in_channels, *shape)`` image, in eval mode."""
    model.eval()
    inputs = (torch.zeros(1, in_channels, *shape),)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # jit tracer warnings about shape checks in forward
        analyzer = FlopAnalyzer(model, inputs)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        flops = analyzer.total()
        result = dict(params=parameter_count(model)[''], flops=flops,
                      uncounted=sorted(analyzer.unsupported_ops()))
        if show_table:
            result['table'] = complexity_stats_table(analyzer, show_param_shapes=False)
    return result


def human(n: float) -> str:
    for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if n >= scale:
            return f'{n / scale:.2f}{unit}'
    return str(int(n))


def build_from_args(args: argparse.Namespace) -> Tuple[nn.Module, Optional[Config]]:
    """The model to measure and, for a config, the config."""
    if args.model is not None:
        return MODELS.build(dict(type=args.model, **args.model_args)), None
    cfg = load_config(args.config, args.cfg_options)
    if 'model' not in cfg:
        raise ConfigError(f'{args.config} has no `model` entry to measure')
    return MODELS.build(cfg.model), cfg


def input_shape(model: nn.Module, cfg: Optional[Config],
                shape: Optional[Sequence[int]] = None) -> Tuple[Tuple[int, int], str]:
    """The input ``(H, W)`` to measure with and where it comes from: ``--shape``, else the config's test
    pipeline (:func:`pipeline_input_shape`), else the size the model declares (:func:`default_shape`)."""
    if shape:
        return (int(shape[0]), int(shape[1])), '--shape'
    reason = 'no config'
    if cfg is not None:
        pipeline, which = config_pipeline(cfg)
        found, reason = pipeline_input_shape(pipeline, which) if pipeline else (None, 'no pipeline in the config')
        if found is not None:
            return found, reason
    try:
        return default_shape(model), f'declared by the model ({reason})'
    except ValueError as err:
        raise ConfigError(f'{err} ({reason})') from None


def zoo_table() -> str:
    """Markdown table of every SR head and backbone in :data:`ZOO`."""
    lines = ['| model | paper | input (H x W) | output | params | FLOPs (MACs) | config |',
             '|---|---|---|---|---|---|---|']
    for name, paper, cfg, shape in ZOO:
        model = MODELS.build(cfg)
        stats = complexity(model, shape)
        with torch.no_grad():
            out = model(torch.zeros(1, 3, *shape))
        args = ', '.join(f'{k}={v!r}' for k, v in cfg.items() if k != 'type')
        lines.append(f'| {name} | {paper} | {shape[0]} x {shape[1]} | {" x ".join(map(str, out.shape[1:]))} '
                     f'| {stats["params"]:,} ({human(stats["params"])}) | {human(stats["flops"])} '
                     f'| `{cfg["type"]}({args})` |')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    register_all_modules()
    torch.set_num_threads(1)  # a measurement tool: leave the other cores alone
    if args.zoo:
        print(zoo_table())
        return
    model, cfg = build_from_args(args)
    shape, source = input_shape(model, cfg, args.shape)
    stats = complexity(model, shape, args.in_channels, args.show_table)
    if args.show_table:
        print(stats['table'])
    print(f'model:   {type(model).__name__}\n'
          f'input:   1 x {args.in_channels} x {shape[0]} x {shape[1]} ({source})\n'
          f'params:  {stats["params"]:,} ({human(stats["params"])})\n'
          f'FLOPs:   {stats["flops"]:,} ({human(stats["flops"])}, multiply-adds)\n'
          f'uncounted operators (no FLOP rule in mmengine): {", ".join(stats["uncounted"]) or "none"}')


if __name__ == '__main__':
    report_errors(main)
