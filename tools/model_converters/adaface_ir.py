"""Convert an AdaFace ``ir_{18,34,50,101}`` Lightning ``.ckpt`` into an lrfr checkpoint.

    python tools/model_converters/adaface_ir.py adaface_ir101_webface12m.ckpt ir101.pth --depth 100
    python tools/test.py configs/pretrained/adaface_ir101_1xb128_tinyface.py ir101.pth

AdaFace (``mk-minchul/AdaFace``) saves a PyTorch Lightning checkpoint: ``state_dict`` holds the backbone
under ``model.`` (``net.py``'s ``input_layer``, ``body.<unit>.res_layer / shortcut_layer``, ``output_layer``)
and the AdaFace head under ``head.`` (``kernel``: class centres, and its running batch statistics), which
the embedding does not use and which is dropped. ``ir_101`` is the 100-layer net: ``--depth 100``. The
backbone maps onto :class:`~lrfr.models.backbones.AdaFaceIR` (lrfr's IResNet names); every key and shape is
checked, the output holds them under ``backbone.`` with ``meta`` (source, file name, SHA-256).
"""
import argparse
import os.path as osp
import re
import sys
from typing import Dict, List, Tuple

import torch

from lrfr.models.backbones import AdaFaceIR

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _convert import ConversionError, convert_file, run_converter  # noqa: E402

DEPTHS = (18, 34, 50, 100)
CONVERTER = 'tools/model_converters/adaface_ir.py'
#: lrfr unit module -> index in AdaFace's ``res_layer`` (BN, Conv, BN, PReLU, Conv, BN).
RES_LAYER = {'bn1': 0, 'conv1': 1, 'bn2': 2, 'prelu': 3, 'conv2': 4, 'bn3': 5}
#: lrfr stem / output modules -> AdaFace's.
OUTER = {'conv1': 'input_layer.0', 'bn1': 'input_layer.1', 'prelu': 'input_layer.2',
         'bn2': 'output_layer.0', 'fc': 'output_layer.3', 'features': 'output_layer.4'}


def backbone_cfg(depth: int) -> dict:
    """The lrfr backbone an AdaFace ``ir_{depth}`` fills (112x112, 512-d, AdaFace's dropout of 0.4)."""
    return dict(type='AdaFaceIR', depth=depth, input_size=(112, 112), embed_dim=512)


def to_source(key: str, depth: int) -> str:
    """AdaFace's name of an lrfr AdaFaceIR key: stage units are numbered in one ``body`` sequence."""
    match = re.match(r'^layer(\d)\.(\d+)\.(\w+)\.(.+)$', key)
    if match is None:
        module, _, rest = key.partition('.')
        return f'{OUTER[module]}.{rest}'
    stage, unit, module, rest = int(match[1]), int(match[2]), match[3], match[4]
    index = sum(AdaFaceIR.arch_settings[depth][:stage - 1]) + unit
    if module == 'downsample':  # Sequential(conv 1x1, BN): the same order as AdaFace's shortcut_layer
        return f'body.{index}.shortcut_layer.{rest}'
    return f'body.{index}.res_layer.{RES_LAYER[module]}.{rest}'


def extract(checkpoint: dict, src: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """The backbone tensors of a Lightning checkpoint (``state_dict``, ``model.`` stripped; ``head.`` dropped).

    A bare state dict is accepted too. Keys outside ``model.`` and ``head.`` are kept, so that the check
    reports them as unexpected.
    """
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict):
        raise ConversionError(f'{osp.basename(src)}: state_dict is a {type(state).__name__}, not a dict')
    out: Dict[str, torch.Tensor] = {}
    dropped: List[str] = []
    for key, value in state.items():
        if key.startswith('head.'):
            dropped.append(key)
        elif isinstance(value, torch.Tensor):
            out[key[len('model.'):] if key.startswith('model.') else key] = value
        else:
            raise ConversionError(f'{osp.basename(src)}: state_dict entry {key} is a {type(value).__name__}, '
                                  'not a tensor')
    return out, sorted(dropped)


def convert(src: str, out: str, depth: int, allow_pickle: bool = False) -> dict:
    """Convert ``src`` (AdaFace ``ir_{depth}``; 100 for ``ir_101``) into the lrfr checkpoint ``out``."""
    if depth not in DEPTHS:
        raise ConversionError(f'{CONVERTER}: --depth must be one of {DEPTHS} (100 for ir_101), got {depth}')
    return convert_file(src, out, depth, f'AdaFace ir{depth}', backbone_cfg(depth), to_source, extract,
                        CONVERTER, allow_pickle)


def main() -> None:
    parser = argparse.ArgumentParser(description='AdaFace ir_* Lightning .ckpt -> lrfr checkpoint')
    parser.add_argument('src', help="AdaFace's .ckpt")
    parser.add_argument('out', help='lrfr checkpoint to write')
    parser.add_argument('--depth', type=int, required=True, choices=DEPTHS,
                        help='IR depth of the file (100 for ir_101)')
    parser.add_argument('--allow-pickle', action='store_true',
                        help='unpickle Python objects too, e.g. Lightning hyper-parameters (only for files '
                        'you trust)')
    run_converter(convert, parser)


if __name__ == '__main__':
    main()
