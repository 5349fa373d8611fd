"""Packed face datasets (the reader): every decoded image in one memory-mapped uint8 file, plus an index.

TinyFace-sized faces (~20x16 px, ~1 kB as JPEG) cost far more to open and decode
than to transform, so reading 169k of them per epoch is file-system bound. The packer
(:func:`lrfr.datasets.converters.pack.pack_dataset`) decodes each image once (with the
same ``load_face_image`` the pipeline's ``LoadFaceImage`` uses, so the same checks and
errors) and stores the ``HWC uint8`` BGR pixels back to back:

* ``<out>.bin``: the pixels; *ragged* (each image at its native size, located by an
  offset) or *padded* (an ``N x H x W x 3`` block, each image at the top-left corner
  of its slot, its true size kept in the index);
* ``<out>.npz``: the index: ``offsets``, ``shapes``, ``gt_labels``, ``img_paths``,
  ``subsets``, ``branches`` (and ``bboxes`` when kept), and a JSON header with the
  layout and the source dataset's ``metainfo``.

:class:`PackedFaceDataset` memory-maps ``<out>.bin`` (``np.memmap``: pages are read
on demand and shared by dataloader workers) and yields data infos with ``img``
already decoded, which ``LoadFaceImage`` passes through, so one pipeline config
serves files and packs.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np

from lrfr.registry import DATASETS
from lrfr.structures import BRANCH_NAT
from .base_face import BaseFaceDataset

#: Format tag written to and checked in every index.
PACK_FORMAT = 'lrfr-packed-faces/1'
LAYOUTS = ('ragged', 'padded')
INDEX_KEYS = ('header', 'offsets', 'shapes', 'gt_labels', 'img_paths', 'subsets', 'branches')

# One read-only map per pixel file and process: datasets stay small to pickle / deepcopy
# (mmengine deep-copies datasets in get_subset), and forked workers inherit the mapping.
_PIXEL_MAPS: Dict[str, np.ndarray] = {}


def _decode_strings(array: np.ndarray, count: int, what: str, source: str) -> List[str]:
    strings = array.tobytes().decode('utf-8').split('\n') if count else []
    if len(strings) != count:
        raise ValueError(f'{source}: index holds {len(strings)} {what} for {count} images')
    return strings


def pack_paths(out: str) -> Tuple[str, str]:
    """``(pixel file, index file)`` = ``(<out>.bin, <out>.npz)``; a trailing ``.npz``/``.bin`` is dropped."""
    stem = out[:-4] if out.endswith(('.npz', '.bin')) else out
    return stem + '.bin', stem + '.npz'


def release_pixel_map(bin_path: str) -> None:
    """Drop this process's cached map of ``bin_path``, so the next read maps the file anew.

    Called by the packer before it replaces a pack, so a stale map of the older pixels
    is never reused.
    """
    _PIXEL_MAPS.pop(osp.abspath(bin_path), None)


@DATASETS.register_module()
class PackedFaceDataset(BaseFaceDataset):
    """A face dataset packed by :func:`~lrfr.datasets.converters.pack.pack_dataset` (``pack.py``'s command line).

    Data infos are those of the source dataset (``img_path``, ``gt_label``,
    ``subset``, ``branch``, ``bbox`` when kept) plus ``img`` (``HWC uint8`` BGR, a
    writable copy), ``ori_shape``/``img_shape``, and ``pack_offset``/``pack_shape``.
    ``metainfo`` is the source dataset's (``classes``, ``num_classes`` ...).

    Args:
        pack_file (str): the ``.npz`` index written by the packer (relative paths
            are taken from ``data_root``); the ``.bin`` is found next to it.
        data_root (str): root of a relative ``pack_file``. Defaults to ``''``.
        branch (str, optional): override the packed branch of every sample.
            Defaults to None (keep the packed one).
        **kwargs: the rest of :class:`BaseFaceDataset` (``pipeline``, ``indices`` ...).

    Example:
        >>> train = dict(type='PackedFaceDataset', pack_file='data/packed/tinyface_train.npz',
        ...              pipeline=train_pipeline)  # same pipeline as for the JPEG files
    """

    LAYOUT = 'a <name>.npz index and <name>.bin pixels from tools/dataset_converters/pack.py'

    def __init__(self,
                 pack_file: str,
                 data_root: str = '',
                 branch: Optional[str] = None,
                 **kwargs) -> None:
        if not isinstance(pack_file, str) or not pack_file.endswith('.npz'):
            raise ValueError(f'pack_file must be the .npz index written by pack.py, got {pack_file!r}')
        self.keep_branch = branch is None
        self._bin_path = ''
        self._layout = 'ragged'
        super().__init__(data_root=data_root, ann_file=pack_file,
                         branch=BRANCH_NAT if branch is None else branch, **kwargs)

    def _describe(self) -> str:
        branch = 'as packed' if self.keep_branch else repr(self.branch)
        return f'pack_file={self.ann_file!r}, branch={branch}'

    def load_samples(self) -> List[dict]:
        """Read and check the index; one data info per packed image."""
        path = self.ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(f'packed index not found: {path} (expected {self.LAYOUT})')
        try:
            with np.load(path, allow_pickle=False) as index:
                arrays = {k: index[k] for k in index.files}
        except Exception as exc:  # zip / npy errors come in several types
            raise ValueError(f'{path}: cannot read as a packed index ({exc})') from exc
        missing = [k for k in INDEX_KEYS if k not in arrays]
        if missing:
            raise ValueError(f'{path}: not a packed face index, missing {missing}')
        header = json.loads(_decode_strings(arrays['header'], 1, 'header', path)[0])
        if header.get('format') != PACK_FORMAT or header.get('layout') not in LAYOUTS:
            raise ValueError(f'{path}: format {header.get("format")!r} / layout '
                             f'{header.get("layout")!r}; expected {PACK_FORMAT!r}, one of {LAYOUTS}')
        count = int(header['num_images'])
        offsets, shapes, labels = arrays['offsets'], arrays['shapes'], arrays['gt_labels']
        if not len(offsets) == len(shapes) == len(labels) == count:
            raise ValueError(f'{path}: index arrays disagree with num_images={count}')
        paths = _decode_strings(arrays['img_paths'], count, 'img_paths', path)
        subsets = _decode_strings(arrays['subsets'], count, 'subsets', path)
        branches = _decode_strings(arrays['branches'], count, 'branches', path)
        bboxes = arrays.get('bboxes')

        self._bin_path = osp.join(osp.dirname(osp.abspath(path)), header['bin_file'])
        self._layout = header['layout']
        self._pad_size = header['pad_size']
        if not osp.isfile(self._bin_path):
            raise FileNotFoundError(f'packed pixel file not found: {self._bin_path} (named by {path})')
        size = osp.getsize(self._bin_path)
        if size != int(header['total_bytes']):
            raise ValueError(f'{self._bin_path}: {size} bytes, the index expects '
                             f'{header["total_bytes"]}; the pack is truncated or from another run')

        # JSON turned tuples (classes) into lists; give them back their mmengine type.
        self._metainfo.update({k: tuple(v) if isinstance(v, list) else v
                               for k, v in header['metainfo'].items()})
        infos = []
        for i in range(count):
            info = dict(img_path=paths[i], gt_label=int(labels[i]), subset=subsets[i],
                        branch=branches[i] if self.keep_branch else self.branch,
                        pack_offset=int(offsets[i]), pack_shape=tuple(int(v) for v in shapes[i]))
            if bboxes is not None and bboxes[i][0] >= 0:
                info['bbox'] = tuple(float(v) for v in bboxes[i])
            infos.append(info)
        return infos

    def _pixels(self) -> np.ndarray:
        """The pixel file, mapped once per process (read-only)."""
        pixels = _PIXEL_MAPS.get(self._bin_path)
        if pixels is None:
            if self._layout == 'padded':
                h, w = self._pad_size
                shape = (osp.getsize(self._bin_path) // (h * w * 3), h, w, 3)
            else:
                shape = (osp.getsize(self._bin_path),)
            # A plain ndarray view of the map: slicing skips np.memmap's per-call overhead.
            pixels = np.memmap(self._bin_path, dtype=np.uint8, mode='r', shape=shape
                               ).view(np.ndarray)
            _PIXEL_MAPS[self._bin_path] = pixels
        return pixels

    def get_data_info(self, idx: int) -> dict:
        """The packed data info of sample ``idx`` with its decoded ``img``."""
        info = super().get_data_info(idx)
        h, w, c = info['pack_shape']
        pixels = self._pixels()
        if self._layout == 'padded':
            slot = info['pack_offset'] // pixels[0].nbytes
            img = np.array(pixels[slot, :h, :w])
        else:
            start = info['pack_offset']
            img = np.array(pixels[start:start + h * w * c]).reshape(h, w, c)
        info['img'] = img
        info['ori_shape'] = info['img_shape'] = (h, w)
        return info


__all__ = ['PackedFaceDataset', 'pack_paths', 'release_pixel_map', 'PACK_FORMAT']
