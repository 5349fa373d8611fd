"""Export a trained lrfr model's embedding path as one graph:
``python tools/deployment/pytorch2onnx.py CONFIG CKPT --out model.onnx [--dynamic-batch] [--opset 17]
[--format onnx|torchscript] [--verify]``.

Input of the graph: ``(N, 3, H, W)`` uint8 BGR faces as the config's test pipeline resizes them; output: the
features the config's IdentificationMetric matches. The preprocessing is written into the model's metadata
(see docs/deployment.md and :mod:`lrfr.apis.export`). ``--verify`` runs the exported file on random faces and
prints the largest difference from PyTorch.
"""
import argparse
import os.path as osp
import sys

import numpy as np
import torch

from lrfr.apis import init_model
from lrfr.apis.export import (INPUT_NAME, EmbeddingGraph, export_onnx, export_torchscript, identification_options,
                              pipeline_input_size)
from lrfr.compat import trust_checkpoints
from lrfr.utils import register_all_modules


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export an lrfr model (SR + FR + neck + flip fusion) to ONNX '
                                     'or TorchScript')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (omit with --random-init)')
    parser.add_argument('--random-init', action='store_true', help='export the untrained model (for testing)')
    parser.add_argument('--out', required=True, help='output file (.onnx or .pt)')
    parser.add_argument('--format', choices=('onnx', 'torchscript'), default='onnx')
    parser.add_argument('--dynamic-batch', action='store_true', help='ONNX: symbolic batch axis (else 1)')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset version (default 17)')
    parser.add_argument('--verify', action='store_true', help='compare the exported model with PyTorch')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle checkpoints fully (weights_only=False): only for files you trust')
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (not args.random_init):
        parser.error('give a CHECKPOINT or --random-init (one of the two)')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint not found: {args.checkpoint}')
    if args.format == 'torchscript' and args.dynamic_batch:
        parser.error('--dynamic-batch is for ONNX; a traced TorchScript model takes any batch size')
    return args


def verify(model: torch.nn.Module, out: str, fmt: str, batch: int) -> float:
    """Largest absolute difference between the exported model and PyTorch on random uint8 faces."""
    opts = identification_options(model.cfg)
    graph = EmbeddingGraph(model, opts['flip_fusion'], opts['l2_normalize'])
    height, width = pipeline_input_size(model.cfg)
    images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8)
    with torch.no_grad():
        expected = graph(images).numpy()
    if fmt == 'onnx':
        import onnxruntime as ort
        session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
        got = session.run(None, {INPUT_NAME: images.numpy()})[0]
    else:
        with torch.no_grad():
            got = torch.jit.load(out)(images).numpy()
    return float(np.abs(got - expected).max())


def main(argv=None) -> None:
    args = parse_args(argv)
    register_all_modules()
    if args.trust_checkpoint:
        trust_checkpoints()
    model = init_model(args.config, args.checkpoint)
    if args.format == 'onnx':
        metadata = export_onnx(model, args.out, args.dynamic_batch, args.opset, args.checkpoint, args.config)
    else:
        metadata = export_torchscript(model, args.out, args.checkpoint, args.config)
    print(f'exported {args.config} to {args.out} ({args.format}); input {metadata["input_layout"]} '
          f'{metadata["input_dtype"]} {metadata["colour_order"]} {metadata["input_size"]}, '
          f'flip_fusion={metadata["flip_fusion"]}, l2_normalize={metadata["l2_normalize"]}')
    if args.verify:
        diff = verify(model, args.out, args.format, batch=2 if args.dynamic_batch or args.format != 'onnx' else 1)
        print(f'max abs difference from PyTorch: {diff:.3g}')
        if diff > 1e-4:
            sys.exit(f'{args.out}: the exported model differs from PyTorch by {diff:.3g} (> 1e-4)')


if __name__ == '__main__':
    main()
