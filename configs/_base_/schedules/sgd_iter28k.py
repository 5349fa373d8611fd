# caffe-face's solver (Wen et al., ECCV 2016: CentreFace's released training setup), used for every training on
# CelebA (the LRFR paper does not give its schedules): SGD with momentum 0.9, weight decay 5e-4, lr 0.1 divided
# by 10 at 16k and 24k iterations, 28k iterations of 256 faces (~35 passes over CelebA's 202,599 images).
# Added to caffe-face's solver: a 500-iteration linear warm-up from 1 % of the rate (nets without normalisation
# and a fresh 10,177-way classifier take their largest steps first) and gradient-norm clipping at 40, a safety
# net above the norms of healthy steps (docs/csri.md, "Training stability"); LossGuardHook stops a divergence.
# Iteration-based, so the same schedule serves one-branch loaders and the two-branch sampler.
_base_ = ['../default_runtime.py']

optim_wrapper = dict(
    type='PartClipOptimWrapper',  # mmengine's OptimWrapper + per-part clipping (lrfr/engine/optim_wrappers)
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=40.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, milestones=[16000, 24000], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=28000, val_interval=28000)  # test once, at the end
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=2, save_best=None),
)
log_processor = dict(by_epoch=False)
