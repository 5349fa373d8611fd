"""Crop a face to its annotated bounding box (e.g. CelebA's in-the-wild images)."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from lrfr.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CropBBox(BaseTransform):
    """Crop ``results['img']`` to the box ``results['bbox'] = (x, y, w, h)`` in pixels.

    The box may be enlarged about its centre by ``scale`` (context around the face);
    ``(x0, y0, x1, y1) = (cx - s*w/2, cy - s*h/2, cx + s*w/2, cy + s*h/2)`` rounded to
    whole pixels and clipped to the image. ``CelebADataset(in_the_wild=True)`` puts
    the box from ``list_bbox_celeba.txt`` in each data info; place this transform
    right after ``LoadFaceImage``.

    **Required keys:** ``img``, ``bbox`` (unless ``skip_missing``). **Modified keys:**
    ``img``, ``img_shape``. **Added keys:** ``crop_bbox`` (the clipped box, ``x0, y0, x1, y1``).

    Args:
        scale (float): box enlargement factor (> 0). Defaults to 1.0.
        skip_missing (bool): pass samples without a ``bbox`` through unchanged instead
            of raising. Defaults to False.
    """

    def __init__(self, scale: float = 1.0, skip_missing: bool = False) -> None:
        if not scale > 0:
            raise ValueError(f'scale must be > 0, got {scale}')
        self.scale = float(scale)
        self.skip_missing = bool(skip_missing)

    def transform(self, results: dict) -> Optional[dict]:
        """Crop the image; raise ``ValueError`` naming the file if the box is invalid."""
        source = results.get('img_path', '<in-memory image>')
        if results.get('bbox') is None:
            if self.skip_missing:
                return results
            raise KeyError(f'{source}: CropBBox needs results["bbox"] = (x, y, w, h)')
        img = results['img']
        x, y, w, h = (float(v) for v in results['bbox'])
        if w <= 0 or h <= 0:
            raise ValueError(f'{source}: bbox {tuple(results["bbox"])} must have w > 0 and h > 0')
        cx, cy = x + w / 2, y + h / 2
        half_w, half_h = self.scale * w / 2, self.scale * h / 2
        height, width = img.shape[:2]
        x0 = int(np.clip(round(cx - half_w), 0, width))
        y0 = int(np.clip(round(cy - half_h), 0, height))
        x1 = int(np.clip(round(cx + half_w), 0, width))
        y1 = int(np.clip(round(cy + half_h), 0, height))
        if x1 <= x0 or y1 <= y0:
            # A box outside the image would give an empty face: a wrong annotation or image.
            raise ValueError(f'{source}: bbox {tuple(results["bbox"])} lies outside the '
                             f'{width}x{height} image')
        results['img'] = np.ascontiguousarray(img[y0:y1, x0:x1])
        results['img_shape'] = results['img'].shape[:2]
        results['crop_bbox'] = (x0, y0, x1, y1)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(scale={self.scale}, skip_missing={self.skip_missing})'
