"""Metric plugins (registered in ``lrfr.registry.METRICS``): mmengine glue around the functional cores."""
from .identification import IdentificationMetric
from .sr_quality import SRQualityMetric
from .verification import VerificationMetric

__all__ = ['IdentificationMetric', 'SRQualityMetric', 'VerificationMetric']
