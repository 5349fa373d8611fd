"""TinyFace (Cheng, Zhu, Gong, "Low-Resolution Face Recognition", ACCV 2018) on its official tree.

TinyFace has 169,403 native low-resolution faces (~20x16 px): 7,804 training images
of 2,570 identities, and a 1:N identification test of 3,728 probes against a gallery
of 4,443 matches plus 153,428 unlabelled distractors (label ``DISTRACTOR_LABEL``, as
in the official MATLAB code). Every labelled file is named ``<personID>_<n>.jpg``.

The official protocol files ``probe_img_ID_pairs.mat`` and
``gallery_match_img_ID_pairs.mat`` list the probe and gallery-match files in the
official order, with ids renumbered ``1..2569`` in increasing personID order. What the
protocol needs is one id per person, the same in both files, and one person per id (checked
here: anything else is a :class:`~lrfr.errors.ProtocolError`); other consistent numberings
(e.g. ids equal to the personIDs, which the official MATLAB script accepts too) are accepted
with a warning. Labels are parsed from the personID prefix, which gives the same matches.
"""
import logging
import os
import os.path as osp
import re
import warnings
from typing import Dict, List, Optional, Tuple

from mmengine.logging import print_log

from lrfr.errors import ProtocolError
from lrfr.registry import DATASETS
from lrfr.structures import (BRANCH_NAT, DISTRACTOR_LABEL, SUBSET_GALLERY, SUBSET_PROBE,
                             SUBSET_TRAIN)
from .base_face import BaseFaceDataset, is_image_file, list_subdirs, require_dir

TINYFACE_LAYOUT = """\
data_root/
  Training_Set/<personID>/<personID>_<n>.jpg      (training: 2,570 identities)
  Testing_Set/Probe/<personID>_<n>.jpg            (3,728 probes)
  Testing_Set/Gallery_Match/<personID>_<n>.jpg    (4,443 gallery matches)
  Testing_Set/Gallery_Distractor/<any name>.jpg   (153,428 distractors)"""

TRAIN_DIR = 'Training_Set'
PROBE_DIR = osp.join('Testing_Set', 'Probe')
MATCH_DIR = osp.join('Testing_Set', 'Gallery_Match')
DISTRACTOR_DIR = osp.join('Testing_Set', 'Gallery_Distractor')

#: Official protocol files: (file name, key of the file names, key of the ids).
PROBE_MAT = ('probe_img_ID_pairs.mat', 'probe_set', 'probe_ids')
GALLERY_MAT = ('gallery_match_img_ID_pairs.mat', 'gallery_set', 'gallery_ids')

SPLITS = ('train', 'probe', 'gallery', 'test')

_NAME_RE = re.compile(r'^(\d+)_(\d+)\.[A-Za-z]+$')


def parse_tinyface_name(name: str) -> Tuple[int, int]:
    """``'<personID>_<n>.<ext>'`` -> ``(personID, n)`` as ints.

    Raises:
        ValueError: the name does not have that form.
    """
    match = _NAME_RE.match(name)
    if match is None:
        raise ValueError(f'file name {name!r} does not parse as TinyFace "<personID>_<n>.jpg"')
    return int(match.group(1)), int(match.group(2))


def _flatten_strings(value, path: str, key: str) -> List[str]:
    """mat4py gives a cell array of strings as ``[['a.jpg'], ...]`` (or a bare str for one entry)."""
    if isinstance(value, str):
        return [value]
    out = []
    for item in value:
        while isinstance(item, list) and len(item) == 1:
            item = item[0]
        if not isinstance(item, str):
            raise ProtocolError(f'{path}: {key!r} must hold file names, found {item!r}')
        out.append(item)
    return out


def _flatten_ints(value, path: str, key: str) -> List[int]:
    """mat4py gives an ``N x 1`` numeric array as ``[[1], [1], ...]`` (or a bare number for one)."""
    if isinstance(value, (int, float)):
        value = [value]
    out = []
    for item in value:
        while isinstance(item, list) and len(item) == 1:
            item = item[0]
        if not isinstance(item, (int, float)) or int(item) != item:
            raise ProtocolError(f'{path}: {key!r} must hold integer ids, found {item!r}')
        out.append(int(item))
    return out


def read_protocol_mat(path: str, names_key: str, ids_key: str) -> Tuple[List[str], List[int]]:
    """Read one official TinyFace protocol ``.mat`` file: file names and ids, in order.

    Args:
        path (str): e.g. ``probe_img_ID_pairs.mat``.
        names_key (str): key of the file-name cell array, e.g. ``'probe_set'``.
        ids_key (str): key of the id array, e.g. ``'probe_ids'``.

    Raises:
        FileNotFoundError: the file is missing.
        ProtocolError: unreadable file, missing keys, or names and ids of different lengths
            (a ``ValueError``).
    """
    import mat4py  # imported here: only the test splits with a protocol need it

    if not osp.isfile(path):
        raise FileNotFoundError(f'TinyFace protocol file not found: {path}')
    try:
        content = mat4py.loadmat(path)
    except Exception as exc:  # mat4py raises several types for a bad file
        raise ProtocolError(f'{path}: cannot read as a MATLAB .mat file ({exc})') from exc
    missing = [k for k in (names_key, ids_key) if k not in content]
    if missing:
        raise ProtocolError(f'{path}: expected keys {names_key!r} and {ids_key!r}, '
                         f'missing {missing}; found {sorted(content)}')
    names = _flatten_strings(content[names_key], path, names_key)
    ids = _flatten_ints(content[ids_key], path, ids_key)
    if len(names) != len(ids):
        raise ProtocolError(f'{path}: {len(names)} file names but {len(ids)} ids')
    return names, ids


def load_tinyface_protocol(protocol_dir: str) -> Dict[str, List[str]]:
    """Read both official protocol files and check their ids against the file names.

    The protocol identifies people by id: it needs one id per person (personID), the same
    in the probe and the gallery file, and one person per id. Anything else means the files
    do not belong together (or were edited), so the labels parsed from the names could not
    be trusted. The official files number the personIDs ``1..K`` in increasing order over
    probe and gallery together; another consistent numbering is accepted with a warning.

    Args:
        protocol_dir (str): folder holding ``probe_img_ID_pairs.mat`` and
            ``gallery_match_img_ID_pairs.mat``.

    Returns:
        dict: ``{'probe': [file names], 'gallery': [file names]}`` in official order.

    Raises:
        FileNotFoundError: a protocol file is missing.
        ProtocolError: unreadable file, a name that does not parse, a person with two ids
            or an id for two people, or a file listed twice (a ``ValueError``).
    """
    tables = {}
    for subset, (fname, names_key, ids_key) in ((SUBSET_PROBE, PROBE_MAT),
                                                (SUBSET_GALLERY, GALLERY_MAT)):
        path = osp.join(protocol_dir, fname)
        names, ids = read_protocol_mat(path, names_key, ids_key)
        pids = []
        for name in names:
            try:
                pids.append(parse_tinyface_name(name)[0])
            except ValueError as exc:
                raise ProtocolError(f'{path}: {exc}') from None
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ProtocolError(f'{path}: file {dup!r} is listed more than once')
        tables[subset] = (path, names, ids, pids)
    id_of: Dict[int, Tuple[int, str, str]] = {}  # personID -> (id, file, name) where first seen
    pid_of: Dict[int, Tuple[int, str, str]] = {}  # id -> (personID, file, name) where first seen
    for path, names, ids, pids in tables.values():
        for name, given, pid in zip(names, ids, pids):
            seen_id, seen_file, seen_name = id_of.setdefault(pid, (given, path, name))
            if seen_id != given:
                raise ProtocolError(
                    f'{path}: {name!r} (personID {pid}) has id {given}, but {seen_name!r} in '
                    f'{seen_file} gives personID {pid} the id {seen_id}: one person, two ids; the two '
                    'protocol files do not belong together or were edited')
            seen_pid, seen_file, seen_name = pid_of.setdefault(given, (pid, path, name))
            if seen_pid != pid:
                raise ProtocolError(
                    f'{path}: {name!r} (personID {pid}) has id {given}, which {seen_name!r} in '
                    f'{seen_file} gives to personID {seen_pid}: two people, one id; the two '
                    'protocol files do not belong together or were edited')
    official = {pid: i + 1 for i, pid in enumerate(sorted(id_of))}
    differ = [pid for pid in sorted(id_of) if id_of[pid][0] != official[pid]]
    if differ:
        pid = differ[0]
        warnings.warn(
            f'TinyFace protocol {protocol_dir}: the ids are consistent (one per person, the same in '
            f'both files) but are not the official renumbering of the personIDs to 1..{len(official)} '
            f'({len(differ)} differ, e.g. personID {pid} has id {id_of[pid][0]}, officially '
            f'{official[pid]}); labels come from the file names, so the results are the same')
    return {subset: names for subset, (_, names, _, _) in tables.items()}


@DATASETS.register_module()
class TinyFaceDataset(BaseFaceDataset):
    """TinyFace on its official tree (Cheng et al., ACCV 2018).

    Splits:

    * ``'train'``: ``Training_Set/<personID>/<personID>_<n>.jpg``; labels are the
      personIDs remapped to ``0..K-1`` in increasing personID order (``classes`` lists
      the personIDs in label order).
    * ``'probe'``: ``Testing_Set/Probe``; label = personID (so probes and gallery
      match by identity).
    * ``'gallery'``: ``Testing_Set/Gallery_Match`` (label = personID), then, with
      ``with_distractors``, ``Testing_Set/Gallery_Distractor`` (any image name, sorted,
      label ``DISTRACTOR_LABEL``).
    * ``'test'``: probe samples then gallery samples (``subset`` 'probe'/'gallery'), so
      one dataset feeds one ``IdentificationMetric``.

    Order: with ``protocol_dir``, probe and gallery match follow the official ``.mat``
    files (whose ids are checked against the names); without it, they are sorted by
    ``(personID, n)`` numerically. Training images are sorted the same way.

    Args:
        data_root (str): the TinyFace root (holding ``Training_Set`` / ``Testing_Set``).
        split (str): ``'train'``, ``'probe'``, ``'gallery'`` or ``'test'``. Defaults to 'train'.
        with_distractors (bool): add the distractors to the gallery. Defaults to True.
        protocol_dir (str, optional): folder with ``probe_img_ID_pairs.mat`` and
            ``gallery_match_img_ID_pairs.mat`` (official order); relative paths are taken
            from ``data_root``. Defaults to None (numeric order).
        branch (str): CSRI branch of the samples. Defaults to ``BRANCH_NAT``.
        skip_bad (bool): skip (count and report) unparsable names, empty identity
            folders and protocol entries whose file is missing, instead of raising.
            Defaults to False.
        **kwargs: the rest of :class:`BaseFaceDataset` (``pipeline``, ``lazy_init``, ...).

    Example:
        >>> test_set = dict(type='TinyFaceDataset', data_root='data/tinyface', split='test',
        ...                 protocol_dir='data/tinyface/protocol', pipeline=test_pipeline)
    """

    LAYOUT = TINYFACE_LAYOUT

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 with_distractors: bool = True,
                 protocol_dir: Optional[str] = None,
                 branch: str = BRANCH_NAT,
                 skip_bad: bool = False,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        self.split = split
        self.with_distractors = bool(with_distractors)
        self.protocol_dir = protocol_dir
        super().__init__(data_root=data_root, branch=branch, skip_bad=skip_bad, **kwargs)

    def _describe(self) -> str:
        return f'split={self.split!r}, branch={self.branch!r}'

    def _list_images(self, folder: str) -> List[str]:
        """Sorted names of the image files directly inside ``folder``; other files are
        left out and recorded, for the one-line report at the end of loading."""
        images = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.is_file():
                    continue
                if is_image_file(entry.name):
                    images.append(entry.name)
                else:
                    self._non_images.append(entry.path)
        return sorted(images)

    def _report_non_images(self) -> None:
        """One warning line for the non-image files met while loading (count and an example)."""
        if self._non_images:
            print_log(f'TinyFaceDataset ({self._describe()}): skipped {len(self._non_images)} non-image '
                      f'file(s) in {self.data_root}, e.g. {sorted(self._non_images)[0]}',
                      logger='current', level=logging.WARNING)

    def _path(self, *parts: str) -> str:
        return osp.join(self.data_root, *parts)

    # -- loading ---------------------------------------------------------------
    def load_samples(self) -> List[dict]:
        """Data infos of the chosen split (see the class docstring)."""
        require_dir(self.data_root, 'TinyFace data_root', self.LAYOUT)
        self._non_images: List[str] = []
        infos = self._load_train() if self.split == 'train' else self._load_test()
        self._report_non_images()
        return infos

    def _load_test(self) -> List[dict]:
        protocol = self._load_protocol()
        infos: List[dict] = []
        if self.split in ('probe', 'test'):
            infos += self._load_labelled(PROBE_DIR, SUBSET_PROBE, protocol)
        if self.split in ('gallery', 'test'):
            infos += self._load_labelled(MATCH_DIR, SUBSET_GALLERY, protocol)
            if self.with_distractors:
                infos += self._load_distractors()
        pids = sorted({i['gt_label'] for i in infos if i['gt_label'] != DISTRACTOR_LABEL})
        # Test labels are the personIDs themselves: classes lists those present.
        self.set_classes([str(p) for p in pids])
        return infos

    def _load_train(self) -> List[dict]:
        root = require_dir(self._path(TRAIN_DIR), 'TinyFace training folder', self.LAYOUT)
        folders = []
        for folder in list_subdirs(root):
            if not folder.isdigit():
                self.report_bad(f'{osp.join(root, folder)}: identity folder name must be the '
                                'integer personID')
                continue
            folders.append((int(folder), folder))
        folders.sort()
        samples: List[Tuple[int, int, str]] = []
        kept_pids: List[int] = []
        for pid, folder in folders:
            path = osp.join(root, folder)
            parsed = []
            for name in self._list_images(path):
                key = self._parse(osp.join(path, name))
                if key is None:
                    continue
                if key[0] != pid:
                    # A file filed under the wrong identity would silently get a wrong label.
                    self.report_bad(f'{osp.join(path, name)}: personID {key[0]} in the file name '
                                    f'differs from its folder {folder!r}')
                    continue
                parsed.append((key, name))
            if not parsed:
                self.report_bad(f'{path}: identity folder holds no usable image '
                                '(expected <personID>_<n>.jpg files)')
                continue
            kept_pids.append(pid)
            label = len(kept_pids) - 1
            samples += [(label, key[1], osp.join(path, name)) for key, name in sorted(parsed)]
        self.set_classes([str(p) for p in kept_pids])
        return [self.make_info(path, label, SUBSET_TRAIN) for label, _, path in samples]

    def _parse(self, path: str) -> Optional[Tuple[int, int]]:
        """``(personID, n)`` of a file, or None after ``report_bad`` (with ``skip_bad``)."""
        try:
            return parse_tinyface_name(osp.basename(path))
        except ValueError as exc:
            self.report_bad(f'{path}: {exc}')
            return None

    def _protocol_path(self) -> str:
        return self.protocol_dir if osp.isabs(self.protocol_dir) else self._path(self.protocol_dir)

    def _load_protocol(self) -> Optional[Dict[str, List[str]]]:
        if self.protocol_dir is None:
            return None
        folder = require_dir(self._protocol_path(), 'TinyFace protocol_dir',
                             f'{PROBE_MAT[0]} and {GALLERY_MAT[0]} inside')
        return load_tinyface_protocol(folder)

    def _load_labelled(self, sub_dir: str, subset: str,
                       protocol: Optional[Dict[str, List[str]]]) -> List[dict]:
        """Probe or gallery-match samples, in protocol order or numeric order."""
        folder = require_dir(self._path(sub_dir), f'TinyFace {subset} folder', self.LAYOUT)
        if protocol is None:
            keyed = []
            for name in self._list_images(folder):
                key = self._parse(osp.join(folder, name))
                if key is not None:
                    keyed.append((key, name))
            return [self.make_info(osp.join(folder, name), key[0], subset)
                    for key, name in sorted(keyed)]
        names = protocol[subset]
        on_disk = set(self._list_images(folder))
        infos = []
        for name in names:
            path = osp.join(folder, name)
            if name not in on_disk:
                self.report_bad(f'{path}: listed in the {subset} protocol file '
                                f'({self._protocol_path()}) but missing on disk',
                                FileNotFoundError)
                continue
            infos.append(self.make_info(path, parse_tinyface_name(name)[0], subset))
        extra = len(on_disk - set(names))
        if extra:
            # The protocol defines the test set; files beyond it are left out, visibly.
            print_log(f'TinyFaceDataset: {extra} images in {folder} are not in the {subset} '
                      'protocol file and are left out', logger='current')
        return infos

    def _load_distractors(self) -> List[dict]:
        folder = require_dir(self._path(DISTRACTOR_DIR), 'TinyFace distractor folder '
                             '(pass with_distractors=False to evaluate without it)', self.LAYOUT)
        return [self.make_info(osp.join(folder, name), DISTRACTOR_LABEL, SUBSET_GALLERY)
                for name in self._list_images(folder)]


__all__ = ['TinyFaceDataset', 'parse_tinyface_name', 'load_tinyface_protocol', 'read_protocol_mat']
