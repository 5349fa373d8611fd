"""Library utilities: the program entry point (:func:`register_all_modules`), argument checks, config loading."""
from .setup_env import register_all_modules

__all__ = ['register_all_modules']
