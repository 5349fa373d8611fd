"""Evaluation: functional cores (numbers) and metric plugins (mmengine Evaluator glue)."""
from .metrics import *  # noqa: F401,F403
