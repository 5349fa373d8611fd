# SR then FR learned apart (LRFR paper Fig. 5b; Table 5 "CentreFace, SR: SRCNN"): the SRCNN trained alone on CelebA
# pairs is frozen; CentreFace starts from its CelebA pre-training and is fine-tuned on TinyFace's native LR faces
# super-resolved from 20x16 to 112x96, with a classifier re-made for TinyFace's 2,570 identities.
_base_ = ['../_base_/models/srcnn-centreface.py', '../_base_/datasets/tinyface_sr_bs256.py',
          '../_base_/schedules/sgd-finetune_iter2k.py']

model = dict(
    freeze_sr=True,
    sr=dict(init_cfg=dict(type='Pretrained', checkpoint='work_dirs/srcnn_1xb64_celeba-pairs/final.pth',
                          prefix='sr.')),
    head=dict(heads=[
        dict(type='SoftmaxHead', in_channels=512, num_classes=2570),
        dict(type='CenterLoss', in_channels=512, num_classes=2570, loss_weight=0.003, alpha=0.5),
    ]),
)
load_from = 'work_dirs/centreface_1xb256_celeba/final.pth'  # FR weights; the SR head comes from its init_cfg
benchmark = dict(name='SRCNN then CentreFace (independent)')
