"""Build a SynLR benchmark (TinyFace layout, Table 2 proportions) from any labelled HR face set.

Usage::

    # one folder per identity
    python tools/dataset_converters/build_synlr.py FaceFolderDataset data/synlr_myfaces \\
        --ds-args data_root=data/my_faces
    # CelebA, realistic degradation instead of 20x16 bicubic
    python tools/dataset_converters/build_synlr.py CelebADataset data/synlr_celeba \\
        --ds-args data_root=data/celeba split=all --mode realistic
    # the dataset of a config (default key: train_dataloader.dataset)
    python tools/dataset_converters/build_synlr.py configs/xxx.py data/synlr_xxx --key train_dataloader.dataset

The output loads with ``TinyFaceDataset(data_root=OUT, split='train' | 'test')``. The logic
(identity split, counts, rounding) is in ``lrfr/datasets/converters/synlr.py``; see docs/data_pipeline.md.
"""
import argparse

from mmengine.config import DictAction

from lrfr.datasets.converters.synlr import MODES, TINYFACE_IMAGES_PER_ID, build_synlr
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import dataset_config_from


#: Config pipeline steps that only prepare the HR face (everything else is dropped).
PREPARATION = ('LoadFaceImage', 'CropBBox')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Build a TinyFace-shaped synthetic LR benchmark')
    parser.add_argument('source', help='a config file (.py) or a registered dataset type, e.g. '
                                       'FaceFolderDataset')
    parser.add_argument('out', help='output folder (new or empty)')
    parser.add_argument('--key', default='train_dataloader.dataset',
                        help='dotted path of the dataset in a config (list items by index)')
    parser.add_argument('--ds-args', nargs='+', action=DictAction, default={},
                        help='dataset arguments, e.g. data_root=data/my_faces')
    parser.add_argument('--mode', choices=MODES, default='bicubic',
                        help='bicubic to --size (the paper) or the realistic degradation chain')
    parser.add_argument('--size', nargs=2, type=int, default=(20, 16), metavar=('H', 'W'),
                        help='LR size for --mode bicubic (default: 20 16, TinyFace mean)')
    parser.add_argument('--degradation', nargs='+', action=DictAction, default={},
                        help='DegradationParams fields for --mode realistic, e.g. blur_prob=0.3')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-images', type=int, default=None,
                        help='benchmark size (default: the largest the source supports)')
    parser.add_argument('--images-per-id', type=float, default=TINYFACE_IMAGES_PER_ID,
                        help='labelled images per labelled identity (default: TinyFace, %(default).2f)')
    return parser.parse_args()


def dataset_config(source: str, key: str, ds_args: dict) -> dict:
    """The source dataset config, keeping only the pipeline steps that prepare the plain HR face."""
    cfg = dataset_config_from(source, key, ds_args)
    if source.endswith('.py') and 'pipeline' not in ds_args:
        # SynLR needs the decoded HR face: keep loading and box cropping, drop augmentation, LR synthesis, packing.
        keep = [t for t in cfg.get('pipeline', []) if t.get('type') in PREPARATION]
        cfg['pipeline'] = keep or [dict(type='LoadFaceImage')]
    return cfg


def main() -> None:
    args = parse_args()
    register_all_modules()
    plan = build_synlr(dataset_config(args.source, args.key, args.ds_args), args.out, mode=args.mode,
                       size=tuple(args.size), degradation=args.degradation, seed=args.seed,
                       num_images=args.num_images, images_per_id=args.images_per_id)
    print(f'wrote {plan} to {args.out}')


if __name__ == '__main__':
    main()
