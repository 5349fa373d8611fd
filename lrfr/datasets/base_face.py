"""Common ground of lrfr's face datasets: one data info per image, identity labels, clear errors.

Every face dataset in lrfr yields data infos (dicts) with at least

* ``img_path`` (str): the image file (what ``LoadFaceImage`` reads);
* ``gt_label`` (int): identity label (``DISTRACTOR_LABEL`` for unlabelled distractors);
* ``subset`` (str): ``SUBSET_TRAIN``, ``SUBSET_PROBE`` or ``SUBSET_GALLERY``;
* ``branch`` (str): ``BRANCH_SYN`` or ``BRANCH_NAT`` (which CSRI branch the sample feeds);

and ``metainfo`` with ``classes`` (identity names, in label order where labels are
contiguous) and ``num_classes``. The subclasses only say where the images are and how
a file maps to an identity (:meth:`BaseFaceDataset.load_samples`); the base class
checks the result and reports skipped bad entries.

Bad input never becomes a silent wrong label: a missing folder raises
``FileNotFoundError`` naming the path and the expected layout; a bad entry (a file
name that does not parse, an identity folder with no images, a listed file that is
missing) raises naming it, or, only with ``skip_bad=True``, is skipped, counted and
summarised in the log once loading ends.
"""
import logging
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Type, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from lrfr.registry import TRANSFORMS
from lrfr.structures import BRANCH_NAT, BRANCHES, SUBSET_GALLERY, SUBSET_PROBE, SUBSET_TRAIN

#: File extensions treated as images when a folder is listed (lower case).
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif', '.tiff', '.webp')
#: Subset names a data info may carry.
SUBSETS = (SUBSET_TRAIN, SUBSET_PROBE, SUBSET_GALLERY)
#: How many skipped entries the end-of-loading summary quotes in full.
MAX_QUOTED_SKIPS = 5


def is_image_file(name: str) -> bool:
    """Whether ``name`` ends with one of :data:`IMG_EXTENSIONS` (case-insensitive)."""
    return name.lower().endswith(IMG_EXTENSIONS)


def require_dir(path: str, what: str, layout: str = '') -> str:
    """Return ``path`` if it is a directory, else raise ``FileNotFoundError``.

    Args:
        path (str): directory that must exist.
        what (str): what the directory is, for the message (e.g. ``'TinyFace probe folder'``).
        layout (str): the expected tree, appended to the message. Defaults to ``''``.
    """
    if not osp.isdir(path):
        hint = f'\nexpected layout:\n{layout}' if layout else ''
        raise FileNotFoundError(f'{what} not found: {path}{hint}')
    return path


def find_first(candidates: Sequence[str], what: str, layout: str = '',
               isdir: bool = False) -> str:
    """Return the first existing path of ``candidates`` (a file, or a folder if ``isdir``).

    Releases of one dataset nest the same files differently (CelebA's official
    ``Anno/``/``Eval/`` folders vs a flat copy), so loaders try each place in turn.

    Args:
        candidates (Sequence[str]): paths to try, in order of preference.
        what (str): what is looked for, for the message.
        layout (str): the expected tree, appended to the message. Defaults to ``''``.
        isdir (bool): look for a directory instead of a file. Defaults to False.

    Raises:
        FileNotFoundError: none exists; the message lists every path tried.
    """
    exists = osp.isdir if isdir else osp.isfile
    for path in candidates:
        if exists(path):
            return path
    tried = '\n  '.join(candidates)
    hint = f'\nexpected layout:\n{layout}' if layout else ''
    raise FileNotFoundError(f'{what} not found; looked for:\n  {tried}{hint}')


def list_image_files(folder: str) -> List[str]:
    """Sorted names of the image files directly inside ``folder`` (no recursion).

    One ``os.scandir`` pass: listing is what costs on 150k-file folders, not sorting.
    Non-image files (``Thumbs.db``, ``README``) and sub-folders are ignored.
    """
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if is_image_file(e.name) and e.is_file())


def list_subdirs(folder: str) -> List[str]:
    """Sorted names of the directories directly inside ``folder``."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir())


class BaseFaceDataset(BaseDataset):
    """Base class of lrfr's face datasets (an mmengine ``BaseDataset``).

    Subclasses implement :meth:`load_samples`, which returns the data infos (built
    with :meth:`make_info`) and calls :meth:`set_classes`; reading happens in
    ``full_init`` only, so ``lazy_init=True`` costs nothing at construction and the
    (default) serialised data list is shared by dataloader workers.

    Args:
        data_root (str): dataset root folder. Defaults to ``''``.
        branch (str): CSRI branch of every sample, one of ``lrfr.structures.BRANCHES``.
            Defaults to ``BRANCH_NAT``.
        skip_bad (bool): skip bad entries (unparsable names, empty identity folders,
            listed files that are missing) instead of raising; the skips are counted in
            ``num_skipped`` and summarised with ``print_log`` after loading.
            Defaults to False.
        pipeline (Sequence[dict | Callable]): transforms applied by ``__getitem__``.
            Defaults to ``()``.
        ann_file (str): annotation file for list-based subclasses. Defaults to ``''``.
        metainfo (dict, optional): extra meta information; ``classes`` and
            ``num_classes`` are computed from the data. Defaults to None.
        indices (int | Sequence[int], optional): keep only these samples (mmengine).
            Defaults to None.
        serialize_data (bool): store the data list as one byte array shared by
            workers (mmengine). Defaults to True.
        test_mode (bool): mmengine test mode (a ``None`` from the pipeline raises).
            Defaults to False.
        lazy_init (bool): defer reading to the first access / ``full_init()``.
            Defaults to False.
        max_refetch (int): retries when the pipeline returns ``None`` (mmengine).
            Defaults to 1000.
    """

    #: Expected tree, quoted in missing-path errors; subclasses fill it in.
    LAYOUT: str = ''

    def __init__(self,
                 data_root: str = '',
                 branch: str = BRANCH_NAT,
                 skip_bad: bool = False,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 ann_file: str = '',
                 metainfo: Optional[dict] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 test_mode: bool = False,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        if branch not in BRANCHES:
            raise ValueError(f'branch must be one of {BRANCHES}, got {branch!r}')
        if not isinstance(data_root, str):
            raise TypeError(f'data_root must be a str, got {type(data_root).__name__}')
        self.branch = branch
        self.skip_bad = bool(skip_bad)
        self.num_skipped = 0
        self._skipped: List[str] = []
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=dict(img_path=''),
            indices=indices,
            serialize_data=serialize_data,
            # Built here with lrfr's registry (the mmpretrain habit) so bare names such as
            # 'LoadFaceImage' resolve even when no default scope is set.
            pipeline=[TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline],
            test_mode=test_mode,
            lazy_init=lazy_init,
            max_refetch=max_refetch)

    # -- what subclasses implement -------------------------------------------
    def load_samples(self) -> List[dict]:
        """Return the data infos of this dataset (built with :meth:`make_info`)."""
        raise NotImplementedError

    # -- helpers for subclasses ----------------------------------------------
    def make_info(self, img_path: str, gt_label: int, subset: str, **extra) -> dict:
        """One data info: ``img_path``, ``gt_label``, ``subset``, this dataset's ``branch``, ``extra``."""
        return dict(img_path=img_path, gt_label=int(gt_label), subset=subset,
                    branch=self.branch, **extra)

    def report_bad(self, message: str, error: Type[Exception] = ValueError) -> None:
        """Handle a bad entry: raise ``error(message)``, or count it when ``skip_bad``.

        Args:
            message (str): names the file (and line) and what was expected.
            error (type): exception class raised without ``skip_bad``. Defaults to ValueError.
        """
        if not self.skip_bad:
            raise error(message)
        self._skipped.append(message)

    def set_classes(self, classes: Sequence[str]) -> None:
        """Record the identity names in ``metainfo`` as ``classes`` and ``num_classes``.

        Every face dataset has exactly these two computed keys, so mmengine's
        ``ConcatDataset`` (which requires equal metainfo keys) can join any two of them;
        pass ``ignore_keys=['classes', 'num_classes']`` when their identities differ.
        """
        self._metainfo.update(classes=tuple(str(c) for c in classes), num_classes=len(classes))

    # -- mmengine hooks --------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        """Load the samples (``load_samples``), check them, and summarise skipped entries."""
        self._skipped = []
        data_list = self.load_samples()
        self.num_skipped = len(self._skipped)
        if self._skipped:
            quoted = '\n  '.join(self._skipped[:MAX_QUOTED_SKIPS])
            more = self.num_skipped - MAX_QUOTED_SKIPS
            tail = f'\n  ... and {more} more' if more > 0 else ''
            print_log(f'{type(self).__name__}: skipped {self.num_skipped} bad entries '
                      f'(skip_bad=True) under {self.data_root!r}:\n  {quoted}{tail}',
                      logger='current', level=logging.WARNING)
        if not data_list:
            raise ValueError(f'{type(self).__name__}: no samples found under {self.data_root!r}'
                             f' ({self._describe()}); expected layout:\n{self.LAYOUT}')
        for info in data_list[:1]:
            # Checking one entry catches a subclass that forgot a key; all are built by make_info.
            missing = {'img_path', 'gt_label', 'subset', 'branch'} - set(info)
            if missing:
                raise KeyError(f'{type(self).__name__}: data info lacks {sorted(missing)}')
        return data_list

    def _describe(self) -> str:
        """Short description of the selection (split etc.) for messages."""
        return f'branch={self.branch!r}'

    def get_gt_labels(self) -> np.ndarray:
        """All identity labels, in dataset order, as an int64 array."""
        # The stored data infos: subclasses that add to get_data_info (a packed image) are skipped.
        return np.array([BaseDataset.get_data_info(self, i)['gt_label'] for i in range(len(self))],
                        dtype=np.int64)

    def get_cat_ids(self, idx: int) -> List[int]:
        """Identity label of sample ``idx`` as a one-element list (for class-balanced wrappers)."""
        return [int(BaseDataset.get_data_info(self, idx)['gt_label'])]

    def __repr__(self) -> str:
        head = f'{type(self).__name__}(data_root={self.data_root!r}, {self._describe()}'
        if not self._fully_initialized:
            return head + ', not loaded yet)'
        return (head + f', samples={len(self)}, '
                f'identities={self._metainfo.get("num_classes")}, skipped={self.num_skipped})')


def check_files_exist(paths: Sequence[str]) -> Dict[str, bool]:
    """Whether each path exists as a file, with one directory listing per folder.

    Listing a folder once is far cheaper than one ``stat`` per file when a
    protocol names thousands of files in a few folders.
    """
    listings: Dict[str, set] = {}
    result = {}
    for path in paths:
        folder, name = osp.split(path)
        if folder not in listings:
            try:
                with os.scandir(folder or '.') as entries:
                    listings[folder] = {e.name for e in entries if e.is_file()}
            except (FileNotFoundError, NotADirectoryError):
                listings[folder] = set()
        result[path] = name in listings[folder]
    return result
