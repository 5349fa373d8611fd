# Demo schedule: 300 iterations of SGD with momentum (caffe-face's optimiser) at caffe-face's rate scaled to the
# batch: lr 0.1 for 256 faces (Wen et al. 2016) -> 0.0125 for the demo's 32 (linear scaling, Goyal et al. 2017).
# The PReLU net has no normalisation layer: at 0.05 it diverged (loss 0.5 -> 10 within 100 iterations).
# A 50-iteration linear warm-up from 1 % of the rate (the fresh classifier's first steps are the largest) times
# a cosine decay to zero over the run's own max_iters (mmengine fills in the cosine's `end`; both are chainable
# schedulers, so their factors multiply): a longer (train_cfg.max_iters=1000) or a shorter schedule needs no
# other change. Gradient clipping is a safety net only: healthy
# runs stay below a grad norm of ~10; LossGuardHook (default_runtime.py) stops a run that still blows up.
_base_ = ['../default_runtime.py']  # this schedule is iteration-based, so it also sets the hooks' units

# Iteration-based so the same schedule serves one-branch loaders and the two-branch sampler.
optim_wrapper = dict(
    type='PartClipOptimWrapper',  # mmengine's OptimWrapper + per-part clipping (lrfr/engine/optim_wrappers)
    optimizer=dict(type='SGD', lr=0.0125, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=40.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, eta_min=0.0),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300, val_interval=300)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=300, max_keep_ckpts=1, save_best=None),
)
log_processor = dict(by_epoch=False)
