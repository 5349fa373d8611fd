"""The explicit entry point of a program that uses lrfr: register every module, set the scope, fix the stack."""
import datetime
import importlib
import warnings

from mmengine import DefaultScope

from lrfr import compat
from lrfr.utils.config_utils import register_config_package

#: Sub-packages whose import registers lrfr's modules.
MODULE_PACKAGES = ('lrfr.datasets', 'lrfr.models', 'lrfr.evaluation', 'lrfr.engine')


def register_all_modules(init_default_scope: bool = True) -> None:
    """Apply :func:`lrfr.compat.apply`, let mmengine read ``lrfr::`` config bases, import every lrfr
    sub-package so all modules are registered, and (by default) make ``lrfr`` the default scope. OpenMMLab's convention (mmpretrain/mmdet
    ``register_all_modules``); the tools call it first thing in ``main``.

    The fixes come first so that they are in place before mmpretrain/mmcv are imported (mmcv's import-time
    warning) and before any config is read (``mmpretrain::`` bases). Configs alone would also work through the
    registries' lazy ``locations``, but without the fixes.

    Args:
        init_default_scope (bool): make ``lrfr`` the current default scope (a new ``DefaultScope`` instance,
            with a warning if another scope was current). Defaults to True.
    """
    compat.apply()
    register_config_package()  # `_base_ = 'lrfr::demo/...'` in a user's config
    for package in MODULE_PACKAGES:
        importlib.import_module(package)
    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != 'lrfr':
        if current is not None:
            warnings.warn(f'default scope was {current.scope_name!r}; switching to "lrfr"')
        stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S%f')
        DefaultScope.get_instance(f'lrfr-{stamp}', scope_name='lrfr')
