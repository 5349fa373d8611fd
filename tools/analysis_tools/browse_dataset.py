"""See what the pipeline feeds the model: an image grid of a config's dataset after its transforms.

    python tools/analysis_tools/browse_dataset.py CONFIG --out DIR [--key train_dataloader.dataset] \
        [--num 24] [--cols 8] [--scale 2]

Writes ``DIR/<key>.png``: ``--num`` samples spread evenly over the dataset (so both branches of a CSRI
``ConcatDataset`` show), each as the packed ``inputs`` the model receives, a synthetic LR/HR pair as the LR
input and its HR target side by side, and a caption with the label (and the identity name where the dataset
has ``classes``) and the branch. Random transforms draw as in training (seeded by ``--seed``).
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/, for _tool_args

from _tool_args import add_cfg_options, add_debug, report_errors  # noqa: E402
from lrfr.errors import ConfigError  # noqa: E402

CAPTION_H = 14
GAP = 2


def to_image(tensor) -> np.ndarray:
    """A packed ``CHW uint8`` tensor (BGR, as LoadFaceImage reads) as an ``HWC uint8`` image."""
    array = tensor.detach().cpu().numpy() if hasattr(tensor, 'detach') else np.asarray(tensor)
    return np.ascontiguousarray(array.transpose(1, 2, 0)).astype(np.uint8)


def sample_cell(sample: dict, classes: Optional[Sequence[str]] = None, scale: int = 1) -> np.ndarray:
    """One grid cell: the model input (and the HR target beside it for a pair), scaled by ``scale``
    (nearest, so pixels stay visible), above a caption ``<label>[ <name>] <branch>[ LR|HR]``."""
    data_sample = sample['data_samples']
    parts = [to_image(sample['inputs'])]
    pair = 'hr_img' in data_sample
    if pair:
        parts.append(to_image(data_sample.hr_img))
    height = max(p.shape[0] for p in parts) * scale
    scaled = []
    for part in parts:
        part = cv2.resize(part, (part.shape[1] * scale, part.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        scaled.append(np.pad(part, ((0, height - part.shape[0]), (0, 0), (0, 0))))
    body = scaled[0] if not pair else np.concatenate(
        [scaled[0], np.full((height, GAP, 3), 255, np.uint8), scaled[1]], axis=1)
    label = int(data_sample.gt_label[0]) if 'gt_label' in data_sample else None
    words = [] if label is None else [str(label)]
    if label is not None and classes is not None and 0 <= label < len(classes) and classes[label] != str(label):
        words.append(f'({classes[label]})')
    branch = data_sample.metainfo.get('branch')
    if branch:
        words.append(str(branch))
    if pair:
        words.append('LR|HR')
    caption = np.full((CAPTION_H, body.shape[1], 3), 255, np.uint8)
    cv2.putText(caption, ' '.join(words), (1, CAPTION_H - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([body, caption], axis=0)


def grid(cells: List[np.ndarray], cols: int) -> np.ndarray:
    """Cells (each padded to the largest) in rows of ``cols``, on white, ``GAP`` pixels apart."""
    h = max(c.shape[0] for c in cells)
    w = max(c.shape[1] for c in cells)
    rows = (len(cells) + cols - 1) // cols
    canvas = np.full((rows * (h + GAP) + GAP, min(cols, len(cells)) * (w + GAP) + GAP, 3), 255, np.uint8)
    for i, cell in enumerate(cells):
        y, x = GAP + (i // cols) * (h + GAP), GAP + (i % cols) * (w + GAP)
        canvas[y:y + cell.shape[0], x:x + cell.shape[1]] = cell
    return canvas


def spread(length: int, num: int) -> List[int]:
    """``num`` indices spread evenly over ``range(length)`` (all of them when ``num >= length``)."""
    if num >= length:
        return list(range(length))
    return [int(i * length / num) for i in range(num)]


def classes_of(dataset, index: int) -> Optional[Sequence[str]]:
    """The identity names of sample ``index``: those of the member dataset that holds it in a
    ``ConcatDataset`` (each CSRI branch has its own identities), else the dataset's ``classes``."""
    if hasattr(dataset, 'datasets') and hasattr(dataset, '_get_ori_dataset_idx'):
        member, _ = dataset._get_ori_dataset_idx(index)
        return classes_of(dataset.datasets[member], 0)
    return (getattr(dataset, 'metainfo', None) or {}).get('classes')


def browse(dataset, num: int, cols: int, scale: int = 1) -> np.ndarray:
    """The grid image of ``num`` samples of ``dataset`` (see the module docstring)."""
    if len(dataset) == 0:
        raise ConfigError('the dataset is empty: nothing to show')
    cells = [sample_cell(dataset[i], classes_of(dataset, i), scale) for i in spread(len(dataset), num)]
    return grid(cells, cols)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Image grid of the pipeline outputs of a config dataset')
    parser.add_argument('config', help='config file, or a shipped config: lrfr::demo/...')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--key', default='train_dataloader.dataset',
                        help='dotted key of the dataset in the config (default: train_dataloader.dataset)')
    parser.add_argument('--num', type=int, default=24, help='samples to show (default: 24)')
    parser.add_argument('--cols', type=int, default=8, help='grid columns (default: 8)')
    parser.add_argument('--scale', type=int, default=2, help='integer zoom of each face (default: 2)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random transforms (default: 0)')
    add_cfg_options(parser)
    add_debug(parser)
    args = parser.parse_args()
    for name in ('num', 'cols', 'scale'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    return args


def main() -> None:
    args = parse_args()
    from mmengine.runner import set_random_seed

    from lrfr.registry import DATASETS
    from lrfr.utils import register_all_modules
    from lrfr.utils.config_utils import dataset_config_from
    register_all_modules()
    set_random_seed(args.seed)
    dataset = DATASETS.build(dataset_config_from(args.config, args.key, cfg_options=args.cfg_options))
    image = browse(dataset, args.num, args.cols, args.scale)
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, args.key.replace('.', '_') + '.png')
    cv2.imwrite(path, image)
    print(f'{min(args.num, len(dataset))} of {len(dataset)} samples of {args.key} -> {path}')


if __name__ == '__main__':
    report_errors(main)
