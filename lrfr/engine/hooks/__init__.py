"""Training hooks: A-Softmax lambda annealing, per-epoch reseeding for exact resume."""
from .asoftmax_lambda_hook import ASoftmaxLambdaHook, set_asoftmax_lambda
from .epoch_seed_hook import EpochSeedHook

__all__ = ['ASoftmaxLambdaHook', 'set_asoftmax_lambda', 'EpochSeedHook']
