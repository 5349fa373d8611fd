"""Evaluation: functional cores (numbers), metric plugins (mmengine Evaluator glue) and reports."""
from . import functional, reporting  # noqa: F401
from .functional import evaluate_identification, evaluate_verification  # noqa: F401
from .metrics import *  # noqa: F401,F403
from .metrics import __all__ as _metrics_all

__all__ = ['functional', 'reporting', 'evaluate_identification', 'evaluate_verification',
           *_metrics_all]
