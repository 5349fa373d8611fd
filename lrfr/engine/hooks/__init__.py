"""Training hooks, e.g. A-Softmax lambda annealing."""
from .asoftmax_lambda_hook import ASoftmaxLambdaHook, set_asoftmax_lambda

__all__ = ['ASoftmaxLambdaHook', 'set_asoftmax_lambda']
