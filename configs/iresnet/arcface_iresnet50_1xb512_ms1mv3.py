# ArcFace IR-50 on MS1MV3 (ms1m-retinaface-t1: 5,179,510 images of 93,431 identities, 112x112), the recipe of
# InsightFace arcface_torch configs/ms1mv3_r50.py: ArcFace m = 0.5, s = 64, 512-d embedding; SGD momentum 0.9,
# weight decay 5e-4, lr 0.1 for a global batch of 512 (its comment; scale it linearly with the batch), 20 epochs,
# polynomial decay to 0 (power 2, its PolyScheduler), no warm-up (lrfr adds one, below); RGB input,
# (x - 127.5) / 127.5, random flip.
# Iteration-based: 20 x 5,179,510 / 512 = 202,325 iterations. Tested on TinyFace at 112x112.
_base_ = ['../_base_/datasets/rec-tinyface_112x112_bs512.py', '../_base_/default_runtime.py']

model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=127.5, to_rgb=True),
    backbone=dict(type='IResNet', depth=50, input_size=(112, 112), embed_dim=512),
    head=dict(type='ArcFaceHead', num_classes=93431, in_channels=512, margin=0.5, scale=64.0),
)
max_iters = 202325
optim_wrapper = dict(
    type='PartClipOptimWrapper',  # mmengine's OptimWrapper + per-part clipping (lrfr/engine/optim_wrappers)
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
)
# mmengine's poly factor (1 - t / T)^power over [begin, end)
# lrfr adds a 2,000-iteration linear warm-up from 1 % (the source has none): every lrfr SGD recipe warms up, so a
# fresh margin head's first, largest steps cannot throw the run off (tests/test_configs.py checks it).
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=2000),
                   dict(type='PolyLR', power=2.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters - 1)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=2, save_best=None),
)
log_processor = dict(by_epoch=False)
