"""Training hooks: A-Softmax lambda annealing, per-epoch reseeding for exact resume, atomic checkpoints."""
from .asoftmax_lambda_hook import ASoftmaxLambdaHook, set_asoftmax_lambda
from .atomic_checkpoint_hook import AtomicCheckpointHook, atomic_local_writes, atomic_write_bytes
from .epoch_seed_hook import EpochSeedHook

__all__ = ['ASoftmaxLambdaHook', 'set_asoftmax_lambda', 'EpochSeedHook', 'AtomicCheckpointHook',
           'atomic_local_writes', 'atomic_write_bytes']
