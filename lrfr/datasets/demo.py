"""Readers of the embedded demo benchmark (the TinyFace-layout tree of :mod:`lrfr.datasets.converters.demo`).

Both datasets only read; when ``data_root`` holds no complete tree they call
:func:`~lrfr.datasets.converters.demo.ensure_demo` (the builder's one entry, atomic and
safe for concurrent ranks) once in their constructor, so the demo configs run from a
fresh clone. The tree holds three disjoint identity sets: 14 auxiliary HR identities
(``DemoHRFaceDataset``), 10 native LR training identities and 16 test identities
(``DemoTinyFaceDataset`` with ``split='train'`` / ``'test'``).
"""
import os.path as osp

from lrfr.registry import DATASETS
from lrfr.structures import BRANCH_SYN
from .converters.demo import DEFAULT_DEMO_ROOT, HR_DIR, ensure_demo
from .face_folder import FaceFolderDataset
from .tinyface import TinyFaceDataset


@DATASETS.register_module()
class DemoTinyFaceDataset(TinyFaceDataset):
    """:class:`TinyFaceDataset` on the embedded demo tree, built under ``data_root`` on first use.

    Args:
        data_root (str): demo folder. Defaults to 'data/demo_tinyface'.
        seed (int): seed used if the tree has to be built. Defaults to 0.
        **kwargs: :class:`TinyFaceDataset` arguments (``split``, ``pipeline``, ...).
    """

    def __init__(self, data_root: str = DEFAULT_DEMO_ROOT, seed: int = 0, **kwargs) -> None:
        ensure_demo(data_root, seed)
        super().__init__(data_root=data_root, **kwargs)


@DATASETS.register_module()
class DemoHRFaceDataset(FaceFolderDataset):
    """The demo's auxiliary HR set: posed originals of 14 identities shared with no other split.

    Reads ``<data_root>/HR_Training_Set`` with :class:`FaceFolderDataset` (grayscale
    92x112 PNGs, made 3-channel by ``LoadFaceImage``); builds the demo on first use.

    Args:
        data_root (str): demo folder (not the HR sub-folder). Defaults to 'data/demo_tinyface'.
        seed (int): seed used if the tree has to be built. Defaults to 0.
        branch (str): CSRI branch; the HR faces are the auxiliary (synthetic-branch) data.
            Defaults to ``BRANCH_SYN``.
        **kwargs: :class:`FaceFolderDataset` arguments (``pipeline``, ...).
    """

    def __init__(self, data_root: str = DEFAULT_DEMO_ROOT, seed: int = 0,
                 branch: str = BRANCH_SYN, **kwargs) -> None:
        ensure_demo(data_root, seed)
        self.demo_root = data_root
        super().__init__(data_root=osp.join(data_root, HR_DIR), branch=branch, **kwargs)


__all__ = ['DemoTinyFaceDataset', 'DemoHRFaceDataset']
