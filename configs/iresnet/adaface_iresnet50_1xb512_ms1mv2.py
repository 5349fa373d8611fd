# AdaFace IR-50 on MS1MV2 (faces_emore: 5,822,653 images of 85,742 identities, 112x112), the recipe of the
# AdaFace repository's scripts/run_ir50_ms1mv2.sh (Kim, Jain, Liu, CVPR 2022): AdaFace m = 0.4, h = 0.333,
# s = 64, t_alpha = 0.01; SGD momentum 0.9, weight decay 5e-4, lr 0.1, global batch 512, 26 epochs with the lr
# divided by 10 after epochs 12, 20 and 24; BGR input, (x - 127.5) / 127.5, random flip. AdaFace also crops,
# jitters colours and lowers the resolution of 20 % of the faces each; lrfr has the last as RandomDegradation
# (used on the CSRI synthetic branch, configs/csri/csri_vdsr-iresnet50-adaface_*), not the first two, so this
# config trains without them. Iteration-based: 26 x 5,822,653 / 512 = 295,681 iterations. lrfr's IResNet is
# arcface_torch's IR layout, not AdaFace's own IR (AdaFaceIR in lrfr.models.backbones, for its checkpoints).
_base_ = ['../_base_/datasets/rec-tinyface_112x112_bs512.py', '../_base_/default_runtime.py']

rec_root = 'data/faces_emore'
model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=127.5, to_rgb=False),
    backbone=dict(type='IResNet', depth=50, input_size=(112, 112), embed_dim=512),
    head=dict(type='AdaFaceHead', num_classes=85742, in_channels=512, margin=0.4, h=0.333, scale=64.0),
)
train_dataloader = dict(dataset=dict(data_root=rec_root))
iters_per_epoch = 5822653 // 512
max_iters = 26 * iters_per_epoch
optim_wrapper = dict(
    type='PartClipOptimWrapper',  # mmengine's OptimWrapper + per-part clipping (lrfr/engine/optim_wrappers)
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
)
# lrfr adds a 2,000-iteration linear warm-up from 1 % (the source has none): every lrfr SGD recipe warms up, so a
# fresh margin head's first, largest steps cannot throw the run off (tests/test_configs.py checks it).
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=2000),
                   dict(type='MultiStepLR', by_epoch=False, gamma=0.1,
                        milestones=[12 * iters_per_epoch, 20 * iters_per_epoch, 24 * iters_per_epoch])]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=2, save_best=None),
)
log_processor = dict(by_epoch=False)
