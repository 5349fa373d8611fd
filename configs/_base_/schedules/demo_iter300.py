# Demo schedule: 300 iterations of SGD with momentum (caffe-face's optimiser), warm-up, two LR steps.
_base_ = ['../default_runtime.py']  # this schedule is iteration-based, so it also sets the hooks' units

# Iteration-based so the same schedule serves one-branch loaders and the two-branch sampler.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=10.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', by_epoch=False, milestones=[200, 260], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300, val_interval=300)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=300, max_keep_ckpts=1, save_best=None),
)
log_processor = dict(by_epoch=False)
