"""The packer: decode a face dataset once into one pixel file + index, read by :class:`PackedFaceDataset`.

The format (``<out>.bin`` pixels, ragged or padded; ``<out>.npz`` index with a JSON
header) is described in :mod:`lrfr.datasets.packed`, whose reader checks it; this
module only writes it. ``tools/dataset_converters/pack.py`` is its command line.
"""
import json
import logging
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from ..base_face import BaseFaceDataset
from ..packed import PACK_FORMAT, pack_paths, release_pixel_map
from ..transforms.crop_bbox import CropBBox
from ..transforms.loading import FaceImageError, load_face_image


def _encode_strings(strings: Sequence[str], what: str) -> np.ndarray:
    """Newline-joined UTF-8 bytes as a uint8 array (4x smaller than numpy's UTF-32 strings)."""
    for s in strings:
        if '\n' in s:
            raise ValueError(f'{what} {s!r} contains a newline and cannot be packed')
    return np.frombuffer('\n'.join(strings).encode('utf-8'), dtype=np.uint8)


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
        str: the index file path (what :class:`~lrfr.datasets.packed.PackedFaceDataset` takes).
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
    release_pixel_map(bin_path)  # a stale map of an older pack must not be reused
    os.replace(tmp_bin, bin_path)
    os.replace(tmp_index, index_path)
    return index_path


__all__ = ['pack_dataset']
