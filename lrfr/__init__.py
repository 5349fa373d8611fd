"""lrfr: low-resolution face recognition on mmengine / mmpretrain."""
from . import compat  # noqa: F401  (patches for this stack's known traps; see compat.py)
from .version import __version__

__all__ = ['__version__']
