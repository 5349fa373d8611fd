"""Registration and runtime helpers shared by the command-line tools and the Python API."""
import datetime
import importlib
import warnings

from mmengine import DefaultScope

#: Sub-packages whose import registers lrfr's modules.
MODULE_PACKAGES = ('lrfr.datasets', 'lrfr.models', 'lrfr.evaluation', 'lrfr.engine')


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every lrfr sub-package so all modules are registered, and make ``lrfr`` the default scope.

    Configs normally rely on the registries' lazy ``locations`` instead; this is for scripts that build
    modules by hand, like mmpretrain's ``register_all_modules``.
    """
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
