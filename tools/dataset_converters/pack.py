"""Pack a face dataset into one memory-mapped pixel file + index, for ``PackedFaceDataset``.

Usage::

    # a dataset described on the command line
    python tools/dataset_converters/pack.py TinyFaceDataset data/packed/tinyface_train \\
        --ds-args data_root=data/tinyface split=train
    # the dataset of a config (default key: train_dataloader.dataset)
    python tools/dataset_converters/pack.py configs/xxx.py data/packed/celeba_train \\
        --key train_dataloader.dataset.datasets.0
    # fixed 32x32 slots instead of native sizes; CelebA in-the-wild cropped to its boxes
    python tools/dataset_converters/pack.py CelebADataset data/packed/celeba_wild \\
        --ds-args data_root=data/celeba in_the_wild=True --crop-bbox

Writes ``OUT.bin`` (pixels) and ``OUT.npz`` (index); use them with
``dict(type='PackedFaceDataset', pack_file='OUT.npz', pipeline=<same pipeline>)``.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

from lrfr.datasets.converters.pack import pack_dataset
from lrfr.datasets.packed import pack_paths
from lrfr.registry import DATASETS
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import dataset_config_from


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Pack a face dataset for fast loading')
    parser.add_argument('source', help='a config file (.py) or a registered dataset type, '
                                       'e.g. TinyFaceDataset')
    parser.add_argument('out', help='output prefix: OUT.bin and OUT.npz are written')
    parser.add_argument('--key', default='train_dataloader.dataset',
                        help='dotted path of the dataset in the config (list items by index, '
                             'e.g. train_dataloader.dataset.datasets.0)')
    parser.add_argument('--ds-args', nargs='+', action=DictAction, default={},
                        help='dataset arguments (override the config ones), e.g. '
                             'data_root=data/tinyface split=train')
    parser.add_argument('--pad-size', nargs=2, type=int, metavar=('H', 'W'),
                        help='store every image in a fixed HxW slot (default: native sizes)')
    parser.add_argument('--crop-bbox', action='store_true',
                        help="crop each image to its data info's bbox (CelebA in-the-wild)")
    parser.add_argument('--skip-bad', action='store_true',
                        help='leave out unreadable images (counted and listed) instead of stopping')
    parser.add_argument('--threads', type=int, default=4, help='decoding threads')
    return parser.parse_args()


def dataset_config(args: argparse.Namespace) -> dict:
    """The dataset config: from a config file at ``--key``, or ``type=source``; plus ``--ds-args``."""
    cfg = dataset_config_from(args.source, args.key, args.ds_args)
    if 'dataset' not in cfg and 'datasets' not in cfg:
        # Packing reads raw data infos; the pipeline is not run, so do not build it.
        cfg['pipeline'] = []
    return cfg


def main() -> None:
    args = parse_args()
    register_all_modules()
    dataset = DATASETS.build(dataset_config(args))
    print(f'packing {dataset!r}')
    index = pack_dataset(dataset, args.out,
                         pad_size=tuple(args.pad_size) if args.pad_size else None,
                         crop_bbox=args.crop_bbox, skip_bad=args.skip_bad,
                         num_threads=args.threads)
    bin_path, _ = pack_paths(args.out)
    print(f'wrote {bin_path} ({osp.getsize(bin_path) / 2**20:.1f} MiB) and {index}')


if __name__ == '__main__':
    main()
