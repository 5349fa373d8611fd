# Runtime shared by every lrfr config: scope, hooks, logging, environment.
default_scope = 'lrfr'

default_hooks = dict(
    # mmengine's RuntimeInfoHook, but the logged losses stay on the device until a logging iteration (one
    # host sync there instead of one per loss per step; the logged values are the same)
    runtime_info=dict(type='DeferredRuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2, save_best='auto'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # augmentation draws depend only on (seed, epoch): resuming reproduces the uninterrupted run
    epoch_seed=dict(type='EpochSeedHook'),
    # a non-finite loss, or one 10x its running median for 5 iterations in a row, stops the run naming the term
    # and the last good checkpoint; decided on the device-side buffer at each flush (logging iteration,
    # checkpoint save), so no checkpoint after the first bad iteration is ever written
    loss_guard=dict(type='LossGuardHook', ratio=10.0, window=100, warmup=50, min_delta=0.1, patience=5,
                    action='stop'),
)

env_cfg = dict(
    # faces come at one fixed size: cuDNN times each convolution's kernels once and keeps the fastest
    # (mmengine turns it off under randomness.deterministic=True); docs/training.md lists the speed switches
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # NCCL on GPUs; lrfr.compat switches to gloo when there is no GPU.
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_processor = dict(by_epoch=True, window_size=10)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
