"""lrfr: low-resolution face recognition on mmengine / mmpretrain.

Importing lrfr changes nothing outside it. Programs that build lrfr modules call
:func:`lrfr.utils.register_all_modules` (registers every module, sets the ``lrfr`` default scope and applies
the stack fixes of :mod:`lrfr.compat`); docs/compat.md explains the contract.
"""
from .version import __version__

__all__ = ['__version__']
