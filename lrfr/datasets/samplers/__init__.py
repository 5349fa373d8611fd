"""Samplers: MultiBranchSampler (a fixed share of each CSRI branch in every batch)."""
from .multi_branch_sampler import MultiBranchSampler, source_quotas

__all__ = ['MultiBranchSampler', 'source_quotas']
