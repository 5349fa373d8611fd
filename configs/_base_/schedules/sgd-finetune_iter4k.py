# CSRI stage 2 (LRFR paper §3, step 2: both branches, from the SR-FR joint stage 1): sgd-finetune_iter2k.py
# stretched to 4k iterations (lr steps at 2.4k and 3.2k) because only half of each 256 batch is native: the
# native branch then sees as many TinyFace faces (4k x 128) as FR fine-tuning does (2k x 256).
_base_ = ['./sgd-finetune_iter2k.py']

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, milestones=[2400, 3200], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4000, val_interval=4000)
