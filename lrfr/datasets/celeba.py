"""CelebA (Liu et al., "Deep Learning Face Attributes in the Wild", ICCV 2015) as an identity dataset.

CelebA has 202,599 face images of 10,177 identities; the paper uses it as the
auxiliary high-resolution set of CSRI's synthetic branch. The official release
(``Img/``, ``Anno/``, ``Eval/``) and flat copies (torchvision's ``celeba/`` folder,
Kaggle's ``.csv`` tables) are both read:

* ``identity_CelebA.txt``: ``<image> <identity>`` per line (identities 1..10177);
* ``list_eval_partition.txt`` (or ``.csv``): ``<image> <0|1|2>`` = train / val / test;
* ``list_bbox_celeba.txt`` (or ``.csv``): a count line, a header line, then
  ``<image> x_1 y_1 width height`` for the in-the-wild images ``img_celeba/``.
"""
import os.path as osp
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np

from lrfr.registry import DATASETS
from lrfr.structures import BRANCH_SYN, SUBSET_TRAIN
from .base_face import SUBSETS, BaseFaceDataset, find_first, is_image_file, list_image_files

CELEBA_LAYOUT = """\
data_root/                          (official release; a flat copy without Img/ Anno/ Eval/ also works)
  Img/img_align_celeba/000001.jpg ...   aligned faces (default)
  Img/img_celeba/000001.jpg ...         in-the-wild images (in_the_wild=True)
  Anno/identity_CelebA.txt              <image> <identity>
  Anno/list_bbox_celeba.txt             count, header, <image> x_1 y_1 width height (in_the_wild=True)
  Eval/list_eval_partition.txt          <image> <0=train|1=val|2=test> (split_by='partition')"""

#: Partition codes of ``list_eval_partition.txt``.
PARTITIONS = {'train': 0, 'val': 1, 'test': 2}
SPLITS = ('train', 'val', 'test', 'all')
SPLIT_BY = ('partition', 'identity')

_SEP = re.compile(r'[,\s]+')


def read_celeba_table(path: str, num_values: int) -> Dict[str, Tuple[int, ...]]:
    """Read a CelebA annotation table: ``<image> v_1 .. v_k`` per line -> ``{image: (v, ...)}``.

    Whitespace- or comma-separated (the official ``.txt`` and Kaggle's ``.csv``).
    Among the first two lines, a line that does not start with an image file name
    is a header (the bbox file's count line and column names; Kaggle's CSV header);
    any other line must parse.

    Args:
        path (str): the table file.
        num_values (int): integers expected after the image name.

    Raises:
        ValueError: a line that does not parse, or an image listed twice; the message
            names the file and line number.
    """
    table: Dict[str, Tuple[int, ...]] = {}
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            tokens = [t for t in _SEP.split(line.strip()) if t]
            if not tokens:
                continue
            if lineno <= 2 and not is_image_file(tokens[0]):
                continue  # header
            try:
                if len(tokens) != num_values + 1:
                    raise ValueError
                values = tuple(int(t) for t in tokens[1:])
            except ValueError:
                raise ValueError(f'{path}:{lineno}: expected "<image> ' +
                                 ' '.join(['<int>'] * num_values) +
                                 f'", got {line.strip()!r}') from None
            if tokens[0] in table:
                raise ValueError(f'{path}:{lineno}: {tokens[0]!r} is listed twice')
            table[tokens[0]] = values
    return table


@DATASETS.register_module()
class CelebADataset(BaseFaceDataset):
    """CelebA identities for face recognition, on the official or a flat tree.

    Samples are the images listed in ``identity_CelebA.txt`` (in its order), kept
    by split; their identities are remapped to contiguous labels ``0..K-1`` in
    increasing CelebA identity order within the split (``classes`` lists the CelebA
    identity numbers in label order). CelebA's official partitions are
    identity-disjoint, so each split is its own label space.

    With ``in_the_wild=True`` the images come from ``img_celeba/`` and each data
    info carries ``bbox = (x, y, w, h)`` (pixels, from ``list_bbox_celeba.txt``);
    the ``CropBBox`` transform crops it (put it right after the image loading).

    Args:
        data_root (str): the CelebA root.
        split (str): ``'train'``, ``'val'``, ``'test'`` or ``'all'``. Defaults to 'train'.
        split_by (str): ``'partition'`` (the official ``list_eval_partition.txt``) or
            ``'identity'`` (a seeded random split of the identities by
            ``split_fractions``; no partition file needed). Defaults to 'partition'.
        split_fractions (Sequence[float]): train/val/test shares of the identities for
            ``split_by='identity'``; they must sum to 1. Defaults to (0.8, 0.1, 0.1).
        seed (int): seed of the identity split. Defaults to 0.
        in_the_wild (bool): read ``img_celeba/`` with bounding boxes instead of the
            aligned ``img_align_celeba/``. Defaults to False.
        subset (str): subset name stored in the data infos. Defaults to ``SUBSET_TRAIN``.
        branch (str): CSRI branch; CelebA is the auxiliary HR set of the synthetic
            branch. Defaults to ``BRANCH_SYN``.
        skip_bad (bool): skip (count and report) images listed but missing on disk, or
            lacking a partition / bbox entry, instead of raising. Defaults to False.
        **kwargs: the rest of :class:`BaseFaceDataset` (``pipeline``, ``lazy_init``, ...).

    Example:
        >>> aux = dict(type='CelebADataset', data_root='data/celeba', split='train',
        ...            pipeline=synthetic_lr_pipeline)
    """

    LAYOUT = CELEBA_LAYOUT

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 split_by: str = 'partition',
                 split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0,
                 in_the_wild: bool = False,
                 subset: str = SUBSET_TRAIN,
                 branch: str = BRANCH_SYN,
                 skip_bad: bool = False,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        if split_by not in SPLIT_BY:
            raise ValueError(f'split_by must be one of {SPLIT_BY}, got {split_by!r}')
        if subset not in SUBSETS:
            raise ValueError(f'subset must be one of {SUBSETS}, got {subset!r}')
        fractions = tuple(float(f) for f in split_fractions)
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError('split_fractions must be 3 non-negative train/val/test shares '
                             f'summing to 1, got {tuple(split_fractions)}')
        self.split = split
        self.split_by = split_by
        self.split_fractions = fractions
        self.seed = int(seed)
        self.in_the_wild = bool(in_the_wild)
        self.subset = subset
        super().__init__(data_root=data_root, branch=branch, skip_bad=skip_bad, **kwargs)

    def _describe(self) -> str:
        return (f'split={self.split!r}, split_by={self.split_by!r}, '
                f'in_the_wild={self.in_the_wild}, branch={self.branch!r}')

    def _find(self, names: Sequence[str], what: str, isdir: bool = False) -> str:
        """First of ``names`` found at the root or in the official Img/ Anno/ Eval/ folders."""
        places = ('', 'Img', 'Anno', 'Eval')
        return find_first([osp.join(self.data_root, place, name) for name in names
                           for place in places], what, self.LAYOUT, isdir=isdir)

    # -- loading ---------------------------------------------------------------
    def load_samples(self) -> List[dict]:
        """Data infos of the chosen split (see the class docstring)."""
        folder_name = 'img_celeba' if self.in_the_wild else 'img_align_celeba'
        img_dir = self._find([folder_name], f'CelebA image folder {folder_name!r}', isdir=True)
        id_file = self._find(['identity_CelebA.txt'], 'CelebA identity file')
        identities = {name: v[0] for name, v in read_celeba_table(id_file, 1).items()}
        names = self._select(list(identities), identities)
        bboxes = None
        if self.in_the_wild:
            bboxes = read_celeba_table(
                self._find(['list_bbox_celeba.txt', 'list_bbox_celeba.csv'],
                           'CelebA bounding-box file'), 4)
        on_disk = set(list_image_files(img_dir))
        kept = []
        for name in names:
            if name not in on_disk:
                self.report_bad(f'{osp.join(img_dir, name)}: listed in {id_file} but missing '
                                'on disk', FileNotFoundError)
                continue
            if bboxes is not None:
                box = bboxes.get(name)
                if box is None or box[2] <= 0 or box[3] <= 0:
                    self.report_bad(f'{osp.join(img_dir, name)}: no valid bounding box '
                                    f'(x, y, w>0, h>0) in the bbox file, got {box}')
                    continue
            kept.append(name)
        ids = sorted({identities[n] for n in kept})
        label_of = {identity: label for label, identity in enumerate(ids)}
        self.set_classes([str(i) for i in ids])
        infos = []
        for name in kept:
            extra = {} if bboxes is None else {'bbox': bboxes[name]}
            infos.append(self.make_info(osp.join(img_dir, name), label_of[identities[name]],
                                        self.subset, **extra))
        return infos

    def _select(self, names: List[str], identities: Dict[str, int]) -> List[str]:
        """The image names of the chosen split, in identity-file order."""
        if self.split == 'all':
            return names
        if self.split_by == 'identity':
            chosen = set(self._identity_split(sorted(set(identities.values()))))
            return [n for n in names if identities[n] in chosen]
        part_file = self._find(['list_eval_partition.txt', 'list_eval_partition.csv'],
                               "CelebA partition file (or use split_by='identity')")
        partition = read_celeba_table(part_file, 1)
        code = PARTITIONS[self.split]
        selected = []
        for name in names:
            if name not in partition:
                self.report_bad(f'{name}: listed in identity_CelebA.txt but not in {part_file}')
                continue
            if partition[name][0] == code:
                selected.append(name)
        return selected

    def _identity_split(self, ids: List[int]) -> List[int]:
        """Identities of ``self.split`` in a seeded permutation cut by ``split_fractions``."""
        order = np.random.default_rng(self.seed).permutation(len(ids))
        n_train = int(round(self.split_fractions[0] * len(ids)))
        n_val = int(round(self.split_fractions[1] * len(ids)))
        bounds = {'train': (0, n_train), 'val': (n_train, n_train + n_val),
                  'test': (n_train + n_val, len(ids))}
        start, stop = bounds[self.split]
        return [ids[i] for i in order[start:stop]]


__all__ = ['CelebADataset', 'read_celeba_table']
