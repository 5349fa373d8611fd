"""InsightFace RecordIO face sets (``train.rec`` + ``train.idx`` + ``property``) read without mxnet.

The format, as written by mxnet/dmlc-core's ``MXIndexedRecordIO`` and InsightFace's
``im2rec`` (MS1MV2/MS1MV3, Glint360K, WebFace42M releases):

* ``train.rec``: records back to back. Each record part is ``uint32 magic = 0xced7230a``,
  ``uint32 lrecord`` (``cflag = lrecord >> 29``, ``length = lrecord & (2**29 - 1)``), then
  ``length`` bytes padded with zeros to a multiple of 4. ``cflag`` 0 is a whole record;
  a payload holding the magic at a 4-aligned position is split there into parts 1
  (first), 2 (middle) ... 3 (last), the magic itself being dropped by the writer and
  put back by the reader.
* a record's payload starts with the image header ``IRHeader`` = ``struct 'IfQQ'``
  (``flag``, ``label``, ``id``, ``id2``); with ``flag > 0`` the label is the ``flag``
  float32 values that follow the header (and the header's own ``label`` is unused).
  The rest is the encoded image (JPEG in the InsightFace releases).
* ``train.idx``: one ``key<TAB>byte offset`` line per record (random access).
* ``property``: ``num_classes,height,width``.
* InsightFace's layout: record 0 holds no image; its label ``(a, b)`` says that keys
  ``1 .. a-1`` are images and keys ``a .. b-1`` are identity records whose label
  ``(start, end)`` is their range of image keys. Sets without this header record
  (record 0 an image, ``flag == 0``) have every key an image.

An image's identity is the first label value of its own header (arcface_torch's
rule). With identity records they give every label at load time in one read per
identity; without them each image header is read once (one small read per image).
"""
import copy
import os
import os.path as osp
import struct
from typing import Dict, List, Optional, Tuple

import numpy as np

from lrfr.registry import DATASETS
from lrfr.structures import BRANCH_NAT, SUBSET_TRAIN
from .base_face import BaseFaceDataset
from .transforms.loading import decode_face_image

#: dmlc-core's RecordIO magic number.
REC_MAGIC = 0xced7230a
MAGIC_BYTES = struct.pack('<I', REC_MAGIC)
#: ``lrecord``: 3 high bits of continuation flag, 29 low bits of part length.
LENGTH_MASK = (1 << 29) - 1
#: mxnet's ``IRHeader``: flag, label, id, id2 (little-endian, no padding: 24 bytes).
IR_FORMAT = '<IfQQ'
IR_SIZE = struct.calcsize(IR_FORMAT)

MX_LAYOUT = """\
data_root/
  train.rec   RecordIO records (mxnet / InsightFace im2rec)
  train.idx   one "key<TAB>offset" line per record
  property    "num_classes,height,width" (optional)"""


class RecordIOError(ValueError):
    """A ``.rec`` / ``.idx`` that is not valid RecordIO; the message names the file and byte offset."""


def pad4(length: int) -> int:
    """``length`` rounded up to a multiple of 4 (RecordIO's alignment)."""
    return (length + 3) & ~3


def read_index(idx_path: str) -> Dict[int, int]:
    """``{key: byte offset}`` of a RecordIO ``.idx`` file (``key<TAB>offset`` lines)."""
    index: Dict[int, int] = {}
    with open(idx_path, encoding='ascii') as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) != 2:
                    raise ValueError
                index[int(fields[0])] = int(fields[1])
            except ValueError:
                raise RecordIOError(f'{idx_path}:{lineno}: expected "key<TAB>offset", got {line.strip()!r}') from None
    return index


def read_record_at(fd: int, offset: int, path: str, file_size: int) -> bytes:
    """The payload of the record starting at ``offset`` in the open file ``fd`` (parts joined).

    Raises:
        RecordIOError: bad magic, a part running past the end of the file (truncated), or
            a continuation flag out of sequence; the message names ``path`` and the offset.
    """
    parts: List[bytes] = []
    pos = offset
    while True:
        head = os.pread(fd, 8, pos)
        if len(head) < 8:
            raise RecordIOError(f'{path}: truncated record at offset {pos} (file ends at {file_size} bytes)')
        magic, lrecord = struct.unpack('<II', head)
        if magic != REC_MAGIC:
            raise RecordIOError(f'{path}: bad magic 0x{magic:08x} at offset {pos} (expected 0x{REC_MAGIC:08x}); '
                                f'the .idx does not match the .rec or the file is corrupt')
        cflag, length = lrecord >> 29, lrecord & LENGTH_MASK
        data = os.pread(fd, length, pos + 8)
        if len(data) < length:
            raise RecordIOError(f'{path}: truncated record at offset {pos}: {length} bytes announced, '
                                f'{len(data)} left in the file')
        expected = (0, 1) if not parts else (2, 3)
        if cflag not in expected:
            raise RecordIOError(f'{path}: record part with flag {cflag} at offset {pos}, expected one of {expected}')
        parts.append(data)
        if cflag in (0, 3):
            return MAGIC_BYTES.join(parts)
        pos += 8 + pad4(length)


def unpack_record(payload: bytes, where: str) -> Tuple[Tuple[float, ...], int, int, int, bytes]:
    """Split a payload into ``(labels, flag, id, id2, image bytes)``; ``labels`` has 1 value when ``flag == 0``."""
    if len(payload) < IR_SIZE:
        raise RecordIOError(f'{where}: record of {len(payload)} bytes is shorter than its {IR_SIZE}-byte header')
    flag, label, id1, id2 = struct.unpack_from(IR_FORMAT, payload)
    body = payload[IR_SIZE:]
    if flag > 0:
        if len(body) < 4 * flag:
            raise RecordIOError(f'{where}: header announces {flag} labels, the record holds {len(body)} bytes')
        labels = struct.unpack_from(f'<{flag}f', body)
        body = body[4 * flag:]
    else:
        labels = (label,)
    return tuple(float(v) for v in labels), flag, id1, id2, body


def read_property(path: str) -> Tuple[int, int, int]:
    """``(num_classes, height, width)`` from an InsightFace ``property`` file."""
    with open(path, encoding='ascii') as f:
        text = f.read().strip()
    try:
        values = tuple(int(v) for v in text.split(','))
        if len(values) != 3:
            raise ValueError
    except ValueError:
        raise ValueError(f'{path}: expected "num_classes,height,width", got {text!r}') from None
    return values  # type: ignore[return-value]


class RecordFile:
    """Random access to the records of one ``.rec`` file, opened lazily in each process.

    Only the path is pickled: a DataLoader worker (fork or spawn) or a deep copy opens
    its own descriptor on first read, and reads use ``os.pread`` (no shared file position).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = None
        self._pid = -1
        self._size = 0

    def _open(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            # A forked child inherits the parent's descriptor number; open its own instead.
            self._fd = os.open(self.path, os.O_RDONLY)
            self._pid = os.getpid()
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def read(self, offset: int) -> bytes:
        """The payload of the record at ``offset``."""
        fd = self._open()
        return read_record_at(fd, offset, self.path, self._size)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __getstate__(self) -> dict:
        return dict(path=self.path)

    def __setstate__(self, state: dict) -> None:
        self.__init__(state['path'])

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: os may be gone
            pass


@DATASETS.register_module()
class MXFaceDataset(BaseFaceDataset):
    """An InsightFace RecordIO training set (MS1MV2/V3, Glint360K, WebFace42M layouts), no mxnet needed.

    The samples are kept as three int64 arrays (key, offset, label) instead of mmengine's
    list of dicts: 24 bytes per image once loaded (the ``.idx`` is parsed into a dict while
    loading, a transient cost of ~100 bytes per record in the loading process). :meth:`get_data_info` builds
    the data info: ``img_path`` (``<rec>#<key>``, for messages), ``gt_label`` (the
    record's first label value), ``subset``, ``branch``, ``rec_key``, ``rec_offset``,
    ``sample_idx``, and the decoded ``img`` (BGR uint8, OpenCV), which
    ``LoadFaceImage`` passes through, so the usual pipelines apply. ``metainfo``:
    ``num_classes`` from ``property`` (else the largest label + 1), ``classes`` the
    label numbers as strings; ``image_size`` (attribute) ``(h, w)`` from ``property``, or None.

    Labels must lie in ``[0, num_classes)``: a record outside raises naming the file
    and offset, so a wrong ``property`` is caught before a head sees the label.

    Args:
        data_root (str): folder holding ``rec_file``, ``idx_file`` and ``property``.
        rec_file (str): the records, relative to ``data_root``. Defaults to ``'train.rec'``.
        idx_file (str): the index; defaults to ``rec_file`` with ``.idx``.
        subset (str): subset stored in the data infos. Defaults to ``SUBSET_TRAIN``.
        branch (str): CSRI branch of the samples. Defaults to ``BRANCH_NAT``.
        **kwargs: the rest of :class:`BaseFaceDataset` (``pipeline``, ``indices``, ...).

    Example:
        >>> train = dict(type='MXFaceDataset', data_root='data/ms1m-retinaface-t1', pipeline=[...])
    """

    LAYOUT = MX_LAYOUT

    def __init__(self, data_root: str, rec_file: str = 'train.rec', idx_file: Optional[str] = None,
                 subset: str = SUBSET_TRAIN, branch: str = BRANCH_NAT, **kwargs) -> None:
        self.rec_file = rec_file
        self.idx_file = idx_file if idx_file is not None else osp.splitext(rec_file)[0] + '.idx'
        self.subset = subset
        self._rec: Optional[RecordFile] = None
        self.image_size: Optional[Tuple[int, int]] = None
        empty = np.zeros(0, dtype=np.int64)
        self._keys, self._offsets, self._labels_arr = empty, empty, empty
        super().__init__(data_root=data_root, branch=branch, **kwargs)

    def _describe(self) -> str:
        return f'rec_file={self.rec_file!r}, branch={self.branch!r}'

    def _paths(self) -> Tuple[str, str]:
        return osp.join(self.data_root, self.rec_file), osp.join(self.data_root, self.idx_file)

    def full_init(self) -> None:
        """Read ``property``, the index and the labels into three arrays (see the module docstring).

        Replaces mmengine's list of per-sample dicts: WebFace42M has 42M images, and 24 bytes per image
        (key, offset, label) are a few percent of what pickled dicts would cost in every process.
        """
        if self._fully_initialized:
            return
        rec_path, idx_path = self._paths()
        if not osp.isfile(rec_path):
            raise FileNotFoundError(f'RecordIO file not found: {rec_path}\nexpected layout:\n{self.LAYOUT}')
        if not osp.isfile(idx_path):
            raise FileNotFoundError(f'{rec_path} has no index {idx_path}: random access needs the .idx '
                                    f'written with it (expected layout:\n{self.LAYOUT})')
        prop_path = osp.join(osp.dirname(rec_path), 'property')
        num_classes, size = None, None
        if osp.isfile(prop_path):
            num_classes, h, w = read_property(prop_path)
            size = (h, w)
        index = read_index(idx_path)
        if not index:
            raise RecordIOError(f'{idx_path}: empty index')
        self._rec = RecordFile(rec_path)
        keys, labels = self._labels(index, rec_path)
        offsets = np.array([index[k] for k in keys.tolist()], dtype=np.int64)
        if num_classes is None:
            num_classes = int(labels.max()) + 1
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f'{rec_path}: record {keys[i]} at offset {offsets[i]} has label {labels[i]}, outside '
                             f'[0, {num_classes}) of {prop_path if size else "the labels seen"}')
        self.set_classes([str(i) for i in range(num_classes)])
        # An attribute, not metainfo: ConcatDataset joins face sets by their metainfo keys (base_face.py).
        self.image_size = size
        self._keys, self._offsets, self._labels_arr = keys, offsets, labels
        if self._indices is not None:
            self._select(self._indices)
        self._fully_initialized = True

    def _select(self, indices) -> None:
        """Keep a subset, as mmengine's ``indices``: an int keeps the first (or, negative, the last) ``n``."""
        if isinstance(indices, int):
            chosen = np.arange(len(self._keys))[:indices] if indices >= 0 else np.arange(len(self._keys))[indices:]
        else:
            chosen = np.asarray(list(indices), dtype=np.int64)
        self._keys, self._offsets, self._labels_arr = (self._keys[chosen], self._offsets[chosen],
                                                      self._labels_arr[chosen])

    def get_subset_(self, indices) -> None:
        """Keep only ``indices`` of this dataset (in place)."""
        self.full_init()
        self._select(indices)

    def get_subset(self, indices) -> 'MXFaceDataset':
        """A copy holding only ``indices``."""
        self.full_init()
        subset = copy.copy(self)
        subset._select(indices)
        return subset

    def __len__(self) -> int:
        self.full_init()
        return len(self._keys)

    def _header(self, index: Dict[int, int], key: int, rec_path: str) -> Tuple[Tuple[float, ...], int]:
        if key not in index:
            raise RecordIOError(f'{rec_path}: key {key} is not in the index')
        labels, flag, _, _, _ = unpack_record(self._rec.read(index[key]), f'{rec_path} offset {index[key]}')
        return labels, flag

    def _labels(self, index: Dict[int, int], rec_path: str) -> Tuple[np.ndarray, np.ndarray]:
        """Image keys and their labels (int64 arrays, key order), from the identity records when the set has them."""
        first = min(index)
        head, flag = self._header(index, first, rec_path)
        if first == 0 and flag > 0:
            if flag < 2:
                raise RecordIOError(f'{rec_path}: header record 0 at offset {index[0]} has {flag} label, '
                                    f'expected (end of images, end of identities)')
            img_end, id_end = int(head[0]), int(head[1])
            keys = np.arange(1, img_end, dtype=np.int64)
            if id_end > img_end:
                labels = np.full(len(keys), -1, dtype=np.int64)
                for identity, key in enumerate(range(img_end, id_end)):
                    (start, end, *_), _ = self._header(index, key, rec_path)
                    labels[int(start) - 1:int(end) - 1] = identity
                missing = np.flatnonzero(labels < 0)
                if missing.size:
                    raise RecordIOError(f'{rec_path}: image key {keys[missing[0]]} belongs to no identity record')
                return keys, labels
        else:
            keys = np.array(sorted(index), dtype=np.int64)
        labels = np.array([int(self._header(index, k, rec_path)[0][0]) for k in keys.tolist()], dtype=np.int64)
        return keys, labels

    def get_gt_labels(self) -> np.ndarray:
        """All identity labels, in dataset order, as an int64 array."""
        self.full_init()
        return self._labels_arr.copy()

    def get_cat_ids(self, idx: int) -> List[int]:
        """Identity label of sample ``idx`` as a one-element list."""
        self.full_init()
        return [int(self._labels_arr[idx])]

    def get_data_info(self, idx: int) -> dict:
        """The data info of sample ``idx`` with its decoded ``img``."""
        self.full_init()
        key, offset, label = int(self._keys[idx]), int(self._offsets[idx]), int(self._labels_arr[idx])
        if self._rec is None:
            self._rec = RecordFile(self._paths()[0])
        info = self.make_info(f'{self._rec.path}#{key}', label, self.subset, rec_key=key, rec_offset=offset)
        info['sample_idx'] = idx if idx >= 0 else len(self) + idx
        where = f'{self._rec.path} offset {offset}'
        labels, _, _, _, body = unpack_record(self._rec.read(offset), where)
        if int(labels[0]) != label:
            raise RecordIOError(f'{where}: record label {int(labels[0])} differs from its identity record\'s '
                                f'{label}')
        img = decode_face_image(body, where)
        info['img'] = img
        info['ori_shape'] = info['img_shape'] = img.shape[:2]
        return info

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_rec'] = None  # no descriptor crosses processes; each opens its own
        return state


__all__ = ['MXFaceDataset', 'RecordFile', 'RecordIOError', 'read_index', 'read_record_at', 'unpack_record',
           'read_property', 'REC_MAGIC', 'IR_FORMAT']
