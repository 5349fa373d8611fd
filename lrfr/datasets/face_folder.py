"""Generic face sets: one folder per identity (``FaceFolderDataset``) or a ``path label`` list file.

For any labelled face collection that is not TinyFace or CelebA (LFW-style
folders, a private set, a SynLR output), without writing a loader.
"""
import os.path as osp
from typing import List

from mmengine.logging import print_log

from lrfr.registry import DATASETS
from lrfr.structures import BRANCH_NAT, DISTRACTOR_LABEL, SUBSET_TRAIN
from .base_face import SUBSETS, BaseFaceDataset, check_files_exist, list_image_files, \
    list_subdirs, require_dir

FOLDER_LAYOUT = """\
data_root/
  <identity A>/<any name>.jpg ...
  <identity B>/<any name>.png ...
  (labels 0..K-1 follow the sorted folder names; numerically if all are integers)"""

LIST_LAYOUT = """\
ann_file, one sample per line (blank lines and lines starting with '#' are ignored):
  <path relative to data_root> <integer label>
  e.g.  alice/0001.jpg 0
(label -100 marks an unlabelled distractor)"""


def _check_subset(subset: str) -> str:
    if subset not in SUBSETS:
        raise ValueError(f'subset must be one of {SUBSETS}, got {subset!r}')
    return subset


@DATASETS.register_module()
class FaceFolderDataset(BaseFaceDataset):
    """One sub-folder per identity; labels ``0..K-1`` follow the sorted folder names.

    Names are sorted as strings, or as integers when every folder name is an integer
    (``2`` before ``10``). ``metainfo['classes']`` holds the folder names in label order. Images are the
    image files directly inside each identity folder, sorted by name; other files
    are ignored.

    Args:
        data_root (str): folder holding one sub-folder per identity.
        subset (str): subset name stored in the data infos. Defaults to ``SUBSET_TRAIN``.
        branch (str): CSRI branch of the samples. Defaults to ``BRANCH_NAT``.
        skip_bad (bool): skip (count and report) identity folders without images
            instead of raising. Defaults to False.
        **kwargs: the rest of :class:`BaseFaceDataset` (``pipeline``, ``lazy_init``, ...).

    Example:
        >>> dataset = dict(type='FaceFolderDataset', data_root='data/my_faces', pipeline=[...])
    """

    LAYOUT = FOLDER_LAYOUT

    def __init__(self,
                 data_root: str,
                 subset: str = SUBSET_TRAIN,
                 branch: str = BRANCH_NAT,
                 skip_bad: bool = False,
                 **kwargs) -> None:
        self.subset = _check_subset(subset)
        super().__init__(data_root=data_root, branch=branch, skip_bad=skip_bad, **kwargs)

    def load_samples(self) -> List[dict]:
        """Data infos of every image of every identity folder."""
        root = require_dir(self.data_root, 'face folder data_root', self.LAYOUT)
        classes: List[str] = []
        infos: List[dict] = []
        folders = list_subdirs(root)
        if folders and all(f.isdigit() for f in folders):
            # Integer identity names sort numerically ('2' before '10'), so label order
            # matches the identity numbers (and TinyFace's order for the same ids).
            folders.sort(key=int)
        for folder in folders:
            names = list_image_files(osp.join(root, folder))
            if not names:
                self.report_bad(f'{osp.join(root, folder)}: identity folder holds no image '
                                f'(expected one of the image extensions)')
                continue
            # Label = position among kept folders, so labels stay contiguous after skips.
            label = len(classes)
            classes.append(folder)
            infos += [self.make_info(osp.join(root, folder, n), label, self.subset) for n in names]
        loose = list_image_files(root)
        if loose:
            print_log(f'FaceFolderDataset: {len(loose)} images directly in {root} belong to no '
                      'identity folder and are left out', logger='current')
        self.set_classes(classes)
        return infos


@DATASETS.register_module()
class FaceListDataset(BaseFaceDataset):
    """Samples from a list file of ``<path> <label>`` lines, paths relative to ``data_root``.

    The path may contain spaces (the label is the last field). Labels are kept as
    written (so probe and gallery lists of one benchmark match), or remapped to
    ``0..K-1`` in increasing label order with ``remap_labels=True`` (for training a
    classifier when the written labels are not contiguous). ``metainfo['classes']``
    holds the written labels, sorted, as strings; ``DISTRACTOR_LABEL`` (-100) marks a
    distractor and is never remapped.

    Args:
        ann_file (str): the list file (relative paths are taken from ``data_root``).
        data_root (str): root of the image paths. Defaults to ``''``.
        remap_labels (bool): remap labels to ``0..K-1``. Defaults to False.
        subset (str): subset name stored in the data infos. Defaults to ``SUBSET_TRAIN``.
        branch (str): CSRI branch of the samples. Defaults to ``BRANCH_NAT``.
        skip_bad (bool): skip (count and report) listed files that are missing instead
            of raising (a line that does not parse always raises). Defaults to False.
        **kwargs: the rest of :class:`BaseFaceDataset` (``pipeline``, ``lazy_init``, ...).

    Example:
        >>> probe = dict(type='FaceListDataset', data_root='data/lr', ann_file='probe.txt',
        ...              subset='probe', pipeline=test_pipeline)
    """

    LAYOUT = LIST_LAYOUT

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 remap_labels: bool = False,
                 subset: str = SUBSET_TRAIN,
                 branch: str = BRANCH_NAT,
                 skip_bad: bool = False,
                 **kwargs) -> None:
        if not ann_file:
            raise ValueError('ann_file (the "<path> <label>" list file) is required')
        self.subset = _check_subset(subset)
        self.remap_labels = bool(remap_labels)
        super().__init__(data_root=data_root, ann_file=ann_file, branch=branch,
                         skip_bad=skip_bad, **kwargs)

    def _describe(self) -> str:
        return f'ann_file={self.ann_file!r}, branch={self.branch!r}'

    def load_samples(self) -> List[dict]:
        """Data infos of every line of ``ann_file``."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'list file not found: {self.ann_file}\n'
                                    f'expected format:\n{self.LAYOUT}')
        entries = []  # (path, label, line number)
        with open(self.ann_file, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                text = line.strip()
                if not text or text.startswith('#'):
                    continue
                fields = text.rsplit(None, 1)
                try:
                    if len(fields) != 2:
                        raise ValueError
                    label = int(fields[1])
                except ValueError:
                    raise ValueError(f'{self.ann_file}:{lineno}: expected "<path> <integer '
                                     f'label>", got {text!r}') from None
                if label < 0 and label != DISTRACTOR_LABEL:
                    raise ValueError(f'{self.ann_file}:{lineno}: label {label} is negative; '
                                     f'only {DISTRACTOR_LABEL} (distractor) is allowed')
                path = fields[0] if osp.isabs(fields[0]) else osp.join(self.data_root, fields[0])
                entries.append((path, label, lineno))
        exists = check_files_exist([path for path, _, _ in entries])
        kept = []
        for path, label, lineno in entries:
            if not exists[path]:
                self.report_bad(f'{self.ann_file}:{lineno}: image {path} not found',
                                FileNotFoundError)
                continue
            kept.append((path, label))
        written = sorted({label for _, label in kept if label != DISTRACTOR_LABEL})
        mapping = {label: i for i, label in enumerate(written)} if self.remap_labels else {}
        self.set_classes([str(label) for label in written])
        return [self.make_info(path, mapping.get(label, label), self.subset)
                for path, label in kept]


__all__ = ['FaceFolderDataset', 'FaceListDataset']
