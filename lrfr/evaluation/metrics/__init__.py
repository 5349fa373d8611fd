"""Metric plugins (registered in ``lrfr.registry.METRICS``): mmengine glue around the functional cores.

``sample_embedding`` (how a metric reads the matching feature off a predicted data sample) is public so that
inference (:func:`lrfr.apis.extract_embeddings`) reads features exactly as the metrics do.
"""
from ._embeddings import sample_embedding
from .identification import IdentificationMetric
from .sr_quality import SRQualityMetric
from .verification import VerificationMetric

__all__ = ['IdentificationMetric', 'SRQualityMetric', 'VerificationMetric', 'sample_embedding']
