"""The RecordIO writer: a labelled face dataset -> InsightFace ``train.rec`` / ``train.idx`` / ``property``.

Writes what :class:`~lrfr.datasets.MXFaceDataset` reads (the format is described in
:mod:`lrfr.datasets.mx_face`), in InsightFace's layout: a header record 0 with label
``(N + 1, N + 1 + K)``, image records ``1 .. N`` (label = identity, images of one
identity contiguous), then one identity record per identity with its key range.
Image bytes are the source files' own (no re-encoding, so a round trip decodes to the
same pixels). ``tools/dataset_converters/folder2rec.py`` is its command line.
"""
import os
import os.path as osp
import struct
from typing import Dict, List, Optional, Sequence, Tuple

from ..mx_face import IR_FORMAT, MAGIC_BYTES, REC_MAGIC, pad4


def pack_record(labels: Sequence[float], body: bytes = b'', id1: int = 0, id2: int = 0) -> bytes:
    """An ``IRHeader`` payload: one label in the header (``flag = 0``) or ``flag = len(labels)`` floats after it."""
    if len(labels) == 1:
        return struct.pack(IR_FORMAT, 0, float(labels[0]), id1, id2) + body
    return struct.pack(IR_FORMAT, len(labels), 0.0, id1, id2) + struct.pack(f'<{len(labels)}f', *labels) + body


def frame_record(payload: bytes) -> bytes:
    """The RecordIO framing of one payload, split at 4-aligned copies of the magic as dmlc-core does."""
    out = bytearray()
    start = 0

    def part(cflag: int, data: bytes) -> None:
        out.extend(MAGIC_BYTES + struct.pack('<I', (cflag << 29) | len(data)) + data)
        out.extend(b'\0' * (pad4(len(data)) - len(data)))

    i = payload.find(MAGIC_BYTES)
    while i != -1:  # find() rather than a 4-byte loop: JPEG payloads are kilobytes, sets are millions
        if i % 4 == 0:
            part(1 if start == 0 else 2, payload[start:i])
            start = i + 4
            i = payload.find(MAGIC_BYTES, i + 4)
        else:
            i = payload.find(MAGIC_BYTES, i + 1)
    part(3 if start else 0, payload[start:])
    return bytes(out)


class RecordWriter:
    """Append records to a ``.rec`` file and write its ``.idx`` (``key<TAB>offset``) on close."""

    def __init__(self, rec_path: str, idx_path: Optional[str] = None) -> None:
        self.rec_path = rec_path
        self.idx_path = idx_path or osp.splitext(rec_path)[0] + '.idx'
        self._file = open(rec_path, 'wb')
        self.index: Dict[int, int] = {}

    def write(self, key: int, payload: bytes) -> int:
        """Write the record ``key``; returns its byte offset."""
        if key in self.index:
            raise ValueError(f'{self.rec_path}: key {key} written twice')
        offset = self._file.tell()
        self._file.write(frame_record(payload))
        self.index[key] = offset
        return offset

    def close(self) -> None:
        self._file.close()
        with open(self.idx_path, 'w', encoding='ascii') as f:
            f.writelines(f'{k}\t{v}\n' for k, v in self.index.items())

    def __enter__(self) -> 'RecordWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_face_rec(samples: Sequence[Tuple[str, int]], out_dir: str, image_size: Tuple[int, int] = (112, 112),
                   num_classes: Optional[int] = None, header: bool = True) -> str:
    """Write ``(image path, label)`` samples as ``out_dir/train.rec``, ``train.idx`` and ``property``.

    Args:
        samples: image files and their labels ``0 .. K-1``; images are grouped by label
            (stable), as identity records need contiguous key ranges.
        out_dir (str): output folder (created).
        image_size (tuple): ``(h, w)`` written to ``property`` (InsightFace sets: 112x112).
        num_classes (int, optional): ``K`` in ``property``; defaults to the largest label + 1.
        header (bool): write InsightFace's header record 0 and identity records; without,
            every record is an image (the layout of some WebFace42M conversions).

    Returns:
        str: the path of ``train.rec``.
    """
    if not samples:
        raise ValueError('write_face_rec: no samples to write')
    ordered = sorted(samples, key=lambda s: s[1])
    labels = [int(label) for _, label in ordered]
    if labels[0] < 0:
        raise ValueError(f'write_face_rec: labels must be >= 0, got {labels[0]}')
    num_classes = labels[-1] + 1 if num_classes is None else int(num_classes)
    os.makedirs(out_dir, exist_ok=True)
    rec_path = osp.join(out_dir, 'train.rec')
    n = len(ordered)
    ranges: List[Tuple[int, int]] = []
    with RecordWriter(rec_path) as writer:
        first = 1 if header else 0
        if header:
            ids = sorted(set(labels))
            if ids != list(range(len(ids))):
                raise ValueError('write_face_rec: identity records need labels 0..K-1 with every label used')
            writer.write(0, pack_record([n + 1, n + 1 + len(ids)]))
        for i, (path, label) in enumerate(ordered):
            with open(path, 'rb') as f:
                writer.write(first + i, pack_record([label], f.read(), id1=first + i))
            if not ranges or labels[i - 1] != label or i == 0:
                ranges.append((first + i, first + i + 1))
            else:
                ranges[-1] = (ranges[-1][0], first + i + 1)
        if header:
            for j, (start, end) in enumerate(ranges):
                writer.write(n + 1 + j, pack_record([start, end]))
    with open(osp.join(out_dir, 'property'), 'w', encoding='ascii') as f:
        f.write(f'{num_classes},{image_size[0]},{image_size[1]}\n')
    return rec_path


__all__ = ['pack_record', 'frame_record', 'RecordWriter', 'write_face_rec', 'REC_MAGIC']
