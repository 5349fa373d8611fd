"""Pictures of results: failure grids of the identification test (``tools/test.py --show-dir``)."""
from .failure_grids import CELL_H, CELL_W, DPI, FailureGridMetric, add_failure_grids, draw_probe_grid

__all__ = ['FailureGridMetric', 'add_failure_grids', 'draw_probe_grid', 'CELL_H', 'CELL_W', 'DPI']
