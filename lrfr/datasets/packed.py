"""Packed face datasets: every decoded image in one memory-mapped uint8 file, plus an index.

TinyFace-sized faces (~20x16 px, ~1 kB as JPEG) cost far more to open and decode
than to transform, so reading 169k of them per epoch is file-system bound. Packing
decodes each image once (with the same ``load_face_image`` the pipeline's
``LoadFaceImage`` uses, so the same checks and errors) and stores the ``HWC uint8``
BGR pixels back to back:

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
import logging
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from lrfr.registry import DATASETS
from lrfr.structures import BRANCH_NAT
from .base_face import BaseFaceDataset
from .transforms.crop_bbox import CropBBox
from .transforms.loading import FaceImageError, load_face_image

#: Format tag written to and checked in every index.
PACK_FORMAT = 'lrfr-packed-faces/1'
LAYOUTS = ('ragged', 'padded')
INDEX_KEYS = ('header', 'offsets', 'shapes', 'gt_labels', 'img_paths', 'subsets', 'branches')

# One read-only map per pixel file and process: datasets stay small to pickle / deepcopy
# (mmengine deep-copies datasets in get_subset), and forked workers inherit the mapping.
_PIXEL_MAPS: Dict[str, np.ndarray] = {}


def _encode_strings(strings: Sequence[str], what: str) -> np.ndarray:
    """Newline-joined UTF-8 bytes as a uint8 array (4x smaller than numpy's UTF-32 strings)."""
    for s in strings:
        if '\n' in s:
            raise ValueError(f'{what} {s!r} contains a newline and cannot be packed')
    return np.frombuffer('\n'.join(strings).encode('utf-8'), dtype=np.uint8)


def _decode_strings(array: np.ndarray, count: int, what: str, source: str) -> List[str]:
    strings = array.tobytes().decode('utf-8').split('\n') if count else []
    if len(strings) != count:
        raise ValueError(f'{source}: index holds {len(strings)} {what} for {count} images')
    return strings


def pack_paths(out: str) -> Tuple[str, str]:
    """``(pixel file, index file)`` = ``(<out>.bin, <out>.npz)``; a trailing ``.npz``/``.bin`` is dropped."""
    stem = out[:-4] if out.endswith(('.npz', '.bin')) else out
    return stem + '.bin', stem + '.npz'


def _jsonable(metainfo: dict) -> dict:
    """The JSON-serialisable part of a metainfo dict (tuples become lists)."""
    out = {}
    for key, value in metainfo.items():
        try:
            json.dumps(value)
        except TypeError:
            continue
        out[key] = value
    return out


def pack_dataset(dataset: BaseFaceDataset,
                 out: str,
                 pad_size: Optional[Tuple[int, int]] = None,
                 crop_bbox: bool = False,
                 skip_bad: bool = False,
                 num_threads: int = 4,
                 progress: bool = True) -> str:
    """Decode every image of ``dataset`` once and write ``<out>.bin`` + ``<out>.npz``.

    Images are read with :func:`~lrfr.datasets.transforms.loading.load_face_image`
    (the loader of ``LoadFaceImage``): a missing, empty, truncated or undecodable file
    raises :class:`FaceImageError` naming it; grayscale becomes 3-channel BGR and
    alpha is dropped, exactly as in the pipeline. The data infos' ``img_path``,
    ``gt_label``, ``subset``, ``branch`` (and ``bbox`` unless cropped) are kept.

    Args:
        dataset (BaseFaceDataset): any lrfr face dataset, or anything with ``__len__``,
            ``get_data_info`` and ``metainfo`` giving such data infos (e.g. an mmengine
            ``ConcatDataset`` of them); its pipeline is not used.
        out (str): output prefix; ``<out>.bin`` and ``<out>.npz`` are written
            (through temporary files, so an interrupted run leaves no half pack).
        pad_size (tuple[int, int], optional): ``(H, W)`` slot of the padded layout;
            an image larger than it raises. Defaults to None (ragged, native sizes).
        crop_bbox (bool): crop each image to its data info's ``bbox`` (``CropBBox``)
            before storing (CelebA in-the-wild). Defaults to False.
        skip_bad (bool): leave out unreadable images instead of raising; they are
            counted and listed in the log at the end. Defaults to False.
        num_threads (int): decoding threads (OpenCV releases the GIL). Defaults to 4.
        progress (bool): show a ``tqdm`` progress bar. Defaults to True.

    Returns:
        str: the index file path (what :class:`PackedFaceDataset` takes).
    """
    if pad_size is not None:
        if len(pad_size) != 2 or min(int(v) for v in pad_size) <= 0:
            raise ValueError(f'pad_size must be (H, W) with positive sizes, got {pad_size}')
        pad_size = (int(pad_size[0]), int(pad_size[1]))
    if num_threads < 1:
        raise ValueError(f'num_threads must be >= 1, got {num_threads}')
    bin_path, index_path = pack_paths(out)
    folder = osp.dirname(osp.abspath(bin_path))
    os.makedirs(folder, exist_ok=True)
    cropper = CropBBox() if crop_bbox else None

    def decode(idx: int) -> Tuple[dict, Optional[np.ndarray], Optional[str]]:
        info = dataset.get_data_info(idx)
        try:
            img = info.get('img')  # repacking a pack: the pixels are already there
            img = load_face_image(info['img_path']) if img is None else img
        except FaceImageError as exc:
            if not skip_bad:
                raise
            return info, None, str(exc)
        if cropper is not None:
            img = cropper.transform(dict(img=img, bbox=info.get('bbox'),
                                         img_path=info['img_path']))['img']
        return info, img, None

    def decoded() -> Iterator[Tuple[dict, Optional[np.ndarray], Optional[str]]]:
        indices = range(len(dataset))
        if num_threads == 1:
            yield from map(decode, indices)
            return
        with ThreadPoolExecutor(num_threads) as pool:
            # Chunks keep memory bounded while threads decode ahead of the writer.
            for start in range(0, len(indices), 1024):
                yield from pool.map(decode, indices[start:start + 1024])

    records: Dict[str, list] = {k: [] for k in ('offsets', 'shapes', 'gt_labels', 'img_paths',
                                                'subsets', 'branches', 'bboxes')}
    skipped: List[str] = []
    offset = 0
    stream = decoded()
    if progress:
        from tqdm import tqdm
        stream = tqdm(stream, total=len(dataset), desc=f'packing {osp.basename(bin_path)}',
                      unit='img')
    tmp_bin = bin_path + '.tmp'
    with open(tmp_bin, 'wb') as f:
        for info, img, error in stream:
            if img is None:
                skipped.append(error)
                continue
            h, w = img.shape[:2]
            if pad_size is not None:
                if h > pad_size[0] or w > pad_size[1]:
                    raise ValueError(f'{info["img_path"]}: image is {h}x{w}, larger than '
                                     f'pad_size {pad_size[0]}x{pad_size[1]}; use a larger '
                                     'pad_size or the ragged layout (no pad_size)')
                slot = np.zeros((*pad_size, 3), np.uint8)
                slot[:h, :w] = img
                img = slot
            f.write(np.ascontiguousarray(img).tobytes())
            records['offsets'].append(offset)
            offset += img.nbytes
            records['shapes'].append((h, w, 3))
            records['gt_labels'].append(int(info['gt_label']))
            records['img_paths'].append(str(info['img_path']))
            records['subsets'].append(str(info['subset']))
            records['branches'].append(str(info['branch']))
            bbox = None if crop_bbox else info.get('bbox')
            records['bboxes'].append((-1, -1, -1, -1) if bbox is None else tuple(bbox))
    if skipped:
        listed = '\n  '.join(skipped[:5]) + (f'\n  ... and {len(skipped) - 5} more'
                                              if len(skipped) > 5 else '')
        print_log(f'pack_dataset: skipped {len(skipped)} unreadable images (skip_bad=True):\n'
                  f'  {listed}', logger='current', level=logging.WARNING)
    if not records['offsets']:
        os.remove(tmp_bin)
        raise ValueError(f'pack_dataset: no image could be packed from {dataset!r}')

    header = dict(format=PACK_FORMAT, layout='ragged' if pad_size is None else 'padded',
                  pad_size=pad_size, bin_file=osp.basename(bin_path), total_bytes=offset,
                  num_images=len(records['offsets']), num_skipped=len(skipped),
                  source=repr(dataset), metainfo=_jsonable(dataset.metainfo))
    arrays = dict(
        header=_encode_strings([json.dumps(header)], 'header'),
        offsets=np.asarray(records['offsets'], np.int64),
        shapes=np.asarray(records['shapes'], np.int32),
        gt_labels=np.asarray(records['gt_labels'], np.int64),
        img_paths=_encode_strings(records['img_paths'], 'img_path'),
        subsets=_encode_strings(records['subsets'], 'subset'),
        branches=_encode_strings(records['branches'], 'branch'))
    bboxes = np.asarray(records['bboxes'], np.float64)
    if (bboxes >= 0).any():
        arrays['bboxes'] = bboxes
    tmp_index = index_path + '.tmp'
    with open(tmp_index, 'wb') as f:
        np.savez(f, **arrays)
    _PIXEL_MAPS.pop(osp.abspath(bin_path), None)  # a stale map of an older pack must not be reused
    os.replace(tmp_bin, bin_path)
    os.replace(tmp_index, index_path)
    return index_path


@DATASETS.register_module()
class PackedFaceDataset(BaseFaceDataset):
    """A face dataset packed by :func:`pack_dataset` (``tools/dataset_converters/pack.py``).

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


__all__ = ['PackedFaceDataset', 'pack_dataset', 'pack_paths', 'PACK_FORMAT']
