# SR-only training on CelebA pairs (LRFR paper Fig. 5b step 1). One schedule for SRCNN, VDSR and DRRN so they
# differ only in architecture: Adam (lr 1e-4, betas 0.9/0.999, no weight decay), as MMagic trains SRCNN/EDSR,
# instead of the original SGD recipes (SRCNN's lr 1e-4 SGD needs ~1e8 updates; VDSR/DRRN's lr 0.1 relies on
# their adjustable gradient clipping). Adam is also indifferent to the scale of the per-image EuclideanLoss.
# lr divided by 10 at 16k and 24k, 28k iterations of 64 pairs (~11 passes over the 162,770 train pairs).
_base_ = ['../default_runtime.py']

optim_wrapper = dict(
    type='PartClipOptimWrapper',  # mmengine's OptimWrapper + per-part clipping (lrfr/engine/optim_wrappers)
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0),
)
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[16000, 24000], gamma=0.1)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=28000, val_interval=28000)  # test once, at the end
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=2, save_best=None),
)
log_processor = dict(by_epoch=False)
