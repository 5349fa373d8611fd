"""Training hooks: A-Softmax lambda annealing, per-epoch reseeding for exact resume, the loss guard,
atomic checkpoints, training scalars fetched from the device at logging iterations only."""
from .asoftmax_lambda_hook import ASoftmaxLambdaHook, set_asoftmax_lambda
from .atomic_checkpoint_hook import AtomicCheckpointHook, atomic_local_writes, atomic_write_bytes
from .epoch_seed_hook import EpochSeedHook
from .loss_guard_hook import LossDivergedError, LossGuardHook
from .runtime_info_hook import (DeferredRuntimeInfoHook, DeferredScalars, deferred_scalars, flush_scalars,
                                is_log_iteration)
from .speed_hook import TrainSpeedHook  # noqa: F401

__all__ = ['ASoftmaxLambdaHook', 'set_asoftmax_lambda', 'EpochSeedHook', 'LossGuardHook', 'LossDivergedError',
           'AtomicCheckpointHook', 'atomic_local_writes', 'atomic_write_bytes', 'DeferredRuntimeInfoHook',
           'DeferredScalars', 'deferred_scalars', 'flush_scalars', 'is_log_iteration']
