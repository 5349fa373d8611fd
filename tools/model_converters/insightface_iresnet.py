"""Convert an InsightFace ``arcface_torch`` IResNet ``backbone.pth`` into an lrfr checkpoint.

    python tools/model_converters/insightface_iresnet.py backbone.pth iresnet50.pth --depth 50
    python tools/test.py configs/pretrained/arcface-torch_iresnet50_1xb128_tinyface.py iresnet50.pth

The file is ``arcface_torch``'s plain state dict of ``iresnet{18,34,50,100,200}`` (``backbones/iresnet.py``,
112x112 input, 512-d features). lrfr's :class:`~lrfr.models.backbones.IResNet` uses the same module names,
so the conversion is a check: every key and shape, nothing more, nothing less; the output holds them under
``backbone.`` with ``meta`` (source, file name, SHA-256).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _convert import ConversionError, convert_file, run_converter, strip_prefix  # noqa: E402

DEPTHS = (18, 34, 50, 100, 200)
CONVERTER = 'tools/model_converters/insightface_iresnet.py'


def backbone_cfg(depth: int) -> dict:
    """The lrfr backbone an ``iresnet{depth}`` fills: 112x112, 512-d, no dropout (arcface_torch's defaults)."""
    return dict(type='IResNet', depth=depth, input_size=(112, 112), embed_dim=512)


def to_source(key: str, depth: int) -> str:
    """arcface_torch's name of an lrfr IResNet key: the same (lrfr kept InsightFace's module names)."""
    return key


def extract(checkpoint: dict, src: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """The backbone tensors of a ``backbone.pth`` (a plain state dict; DDP's ``module.`` prefix removed).

    arcface_torch's resumable ``checkpoint_gpu_*.pt`` keeps them under ``state_dict_backbone``; its head
    (Partial FC centres) is not part of the embedding and is dropped.
    """
    dropped: List[str] = []
    if 'state_dict_backbone' in checkpoint:
        dropped = sorted(k for k in checkpoint if k != 'state_dict_backbone')
        checkpoint = checkpoint['state_dict_backbone']
    state = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if len(state) != len(checkpoint):
        raise ConversionError(f'{osp.basename(src)}: expected a plain state dict of tensors (arcface_torch '
                              f'backbone.pth), found non-tensor entries '
                              f'{sorted(k for k in checkpoint if k not in state)[:3]}')
    return strip_prefix(state, 'module.'), dropped


def convert(src: str, out: str, depth: int, allow_pickle: bool = False) -> dict:
    """Convert ``src`` (arcface_torch ``iresnet{depth}``) into the lrfr checkpoint ``out``; return its meta."""
    if depth not in DEPTHS:
        raise ConversionError(f'{CONVERTER}: --depth must be one of {DEPTHS}, got {depth}')
    return convert_file(src, out, depth, f'arcface_torch iresnet{depth}', backbone_cfg(depth), to_source,
                        extract, CONVERTER, allow_pickle)


def main() -> None:
    parser = argparse.ArgumentParser(description='arcface_torch iresnet backbone.pth -> lrfr checkpoint')
    parser.add_argument('src', help="arcface_torch's backbone.pth")
    parser.add_argument('out', help='lrfr checkpoint to write')
    parser.add_argument('--depth', type=int, required=True, choices=DEPTHS, help='iresnet depth of the file')
    parser.add_argument('--allow-pickle', action='store_true',
                        help='unpickle Python objects too (only for files you trust)')
    run_converter(convert, parser)


if __name__ == '__main__':
    main()
