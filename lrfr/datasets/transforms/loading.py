"""Image loading that always yields ``HWC uint8`` BGR 3-channel faces, or a clear error."""
import logging
import os.path as osp
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get as get_bytes
from mmengine.logging import print_log

from lrfr.registry import TRANSFORMS

_JPEG_SOI = b'\xff\xd8'
_JPEG_EOI = b'\xff\xd9'
_JPEG_SOS = b'\xff\xda'


class FaceImageError(ValueError):
    """An image file that cannot be turned into a ``HWC uint8`` BGR face (names the file)."""


def check_jpeg_complete(data: bytes, source: str) -> None:
    """Raise :class:`FaceImageError` when JPEG bytes end before their end-of-image marker.

    libjpeg decodes a truncated file anyway (grey bottom rows) and only prints
    "Premature end of JPEG file" to stderr, so OpenCV returns a silently wrong image.
    In the entropy-coded data every 0xFF byte is stuffed (0xFF00) or a restart
    marker, so a genuine EOI (0xFFD9) after the last start-of-scan (0xFFDA) is proof
    the last scan was not cut. Trailing bytes after EOI (some cameras) are accepted.

    Args:
        data (bytes): the file contents.
        source (str): file name used in the error.
    """
    if not data.startswith(_JPEG_SOI):
        return
    last_sos = data.rfind(_JPEG_SOS)
    if last_sos < 0 or data.rfind(_JPEG_EOI) < last_sos:
        raise FaceImageError(
            f'{source}: truncated or corrupt JPEG (no end-of-image marker FFD9 after the last scan); '
            'expected a complete JPEG file')


def to_bgr_uint8(img: np.ndarray, source: str) -> np.ndarray:
    """Normalise a decoded image to ``HWC uint8`` with 3 BGR channels.

    * ``HW`` or ``HW1`` grayscale -> the gray value copied to B, G and R;
    * ``HW4`` BGRA -> alpha dropped (no compositing: face crops are opaque; a
      transparent background keeps whatever colour it stored);
    * any dtype other than uint8 (16-bit PNG/TIFF, float) -> error, because rescaling
      would silently change what the network sees.

    Args:
        img (np.ndarray): decoded image.
        source (str): file name (or description) used in the error.
    """
    if not isinstance(img, np.ndarray):
        raise FaceImageError(f'{source}: expected a numpy image, got {type(img).__name__}')
    if img.dtype != np.uint8:
        raise FaceImageError(
            f'{source}: expected an 8-bit image (uint8), got {img.dtype} '
            '(16-bit or float images are not supported; convert them to 8 bits first)')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, :3])
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise FaceImageError(f'{source}: expected HxW, HxWx1, HxWx3 or HxWx4, got shape {img.shape}')


def decode_face_image(data: bytes, source: str) -> np.ndarray:
    """Decode image bytes to ``HWC uint8`` BGR (see :func:`to_bgr_uint8`), checking JPEG completeness.

    Args:
        data (bytes): encoded image (JPEG, PNG, PGM, BMP, ... anything OpenCV reads).
        source (str): file name used in errors.
    """
    if len(data) == 0:
        raise FaceImageError(f'{source}: empty file; expected an image')
    check_jpeg_complete(data, source)
    # IMREAD_UNCHANGED keeps gray / alpha / 16-bit visible so they are handled on purpose
    # (it also ignores EXIF orientation: face crops are stored upright).
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:  # OpenCV signals every decode failure with None, never an exception
        raise FaceImageError(f'{source}: OpenCV cannot decode this file; expected an image')
    return to_bgr_uint8(img, source)


def load_face_image(path: str, backend_args: Optional[dict] = None) -> np.ndarray:
    """Read one face image file as ``HWC uint8`` BGR; raise :class:`FaceImageError` naming it.

    Args:
        path (str): file path or URI understood by ``mmengine.fileio``.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
    """
    try:
        data = get_bytes(path, backend_args=backend_args)
    except FileNotFoundError as e:
        raise FaceImageError(f'{path}: file not found; expected an image') from e
    except OSError as e:
        raise FaceImageError(f'{path}: cannot read ({e}); expected an image') from e
    return decode_face_image(data, str(path))


def save_face_image(path: str, img: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an image with OpenCV, choosing the codec from the extension (JPEG at ``jpeg_quality``).

    Encoding in memory and writing the bytes keeps the output identical for the same
    input (no metadata, no timestamps), which the dataset builders' determinism relies on.

    Args:
        path (str): output file (``.jpg``, ``.png``, ...); its folder must exist.
        img (np.ndarray): ``HW`` or ``HWC`` uint8 image (BGR).
        jpeg_quality (int): JPEG quality when the extension is ``.jpg``/``.jpeg``. Defaults to 95.
    """
    ext = osp.splitext(path)[1].lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if ext in ('.jpg', '.jpeg') else []
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise FaceImageError(f'{path}: OpenCV cannot encode an image of shape {img.shape} as {ext}')
    buf.tofile(path)


@TRANSFORMS.register_module()
class LoadFaceImage(BaseTransform):
    """Load ``results['img_path']`` (or check an already decoded ``results['img']``) as BGR uint8.

    Packed datasets put the decoded array in ``results['img']``; it is then only
    normalised to 3 channels, so one pipeline serves files and packed arrays.

    **Required keys:** ``img_path`` (or ``img``). **Added keys:** ``img``
    (``HWC uint8`` BGR), ``ori_shape`` and ``img_shape`` (``(H, W)``).

    Bad files (missing, empty, truncated JPEG, undecodable, 16-bit) raise
    :class:`FaceImageError` naming the file. With ``ignore_errors=True`` the
    transform instead logs a warning naming the file and the running count of
    skips in this process (``num_skipped``), and returns ``None``: mmengine's
    ``BaseDataset`` then draws another random index (training only; in
    ``test_mode`` it raises, so evaluation never silently loses a probe).
    With several DataLoader workers each worker counts its own skips.

    Args:
        ignore_errors (bool): skip bad files instead of raising. Defaults to False.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
    """

    def __init__(self, ignore_errors: bool = False, backend_args: Optional[dict] = None) -> None:
        self.ignore_errors = ignore_errors
        self.backend_args = backend_args
        self.num_skipped = 0

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image and set ``img``, ``ori_shape``, ``img_shape``."""
        source = str(results.get('img_path', '<in-memory image>'))
        try:
            if results.get('img') is not None:
                img = to_bgr_uint8(results['img'], source)
            elif 'img_path' in results:
                img = load_face_image(results['img_path'], self.backend_args)
            else:
                raise KeyError('LoadFaceImage: results need "img_path" or "img", got keys '
                               f'{sorted(results)}')
        except FaceImageError as e:
            if not self.ignore_errors:
                raise
            self.num_skipped += 1
            print_log(f'LoadFaceImage skipped {e} ({self.num_skipped} skipped so far in this process)',
                      logger='current', level=logging.WARNING)
            return None
        results['img'] = img
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(ignore_errors={self.ignore_errors})'
