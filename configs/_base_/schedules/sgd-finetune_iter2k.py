# Fine-tuning on TinyFace's 7,804 native LR training faces (LRFR paper Fig. 5a/b step 2; the paper gives no
# schedule): the caffe-face solver at a tenth of its rate (lr 0.01, momentum 0.9, weight decay 5e-4), a 100-
# iteration linear warm-up because the identity classifier starts from scratch, lr divided by 10 at 1.2k and
# 1.6k, 2k iterations of 256 faces (~66 passes over TinyFace's training set).
_base_ = ['../default_runtime.py']

optim_wrapper = dict(
    type='PartClipOptimWrapper',  # mmengine's OptimWrapper + per-part clipping (lrfr/engine/optim_wrappers)
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=40.0),  # a safety net, as in sgd_iter28k.py
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, milestones=[1200, 1600], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2000, val_interval=2000)  # test once, at the end
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=1, save_best=None),
)
log_processor = dict(by_epoch=False)
