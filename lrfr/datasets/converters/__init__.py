"""Converters: the code that writes datasets (the readers in :mod:`lrfr.datasets` only read).

* :mod:`.demo`: the embedded demo benchmark's builder (``build_demo``, ``ensure_demo``);
* :mod:`.pack`: ``pack_dataset``, the writer of :class:`~lrfr.datasets.PackedFaceDataset`'s files;
* :mod:`.synlr`: the SynLR builder (a TinyFace-shaped benchmark from any labelled HR set).

``tools/dataset_converters/*.py`` are their command lines.
"""
from .demo import build_demo, ensure_demo  # noqa: F401
from .pack import pack_dataset  # noqa: F401
from .synlr import build_synlr, plan_synlr, table2_counts  # noqa: F401

__all__ = ['build_demo', 'ensure_demo', 'pack_dataset', 'build_synlr', 'plan_synlr', 'table2_counts']
