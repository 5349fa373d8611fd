# SR-FR joint learning, step 2 (LRFR paper §5.3; Table 6 "Joint Learning", Table 7 without CSR): the jointly
# trained model's FR part is fine-tuned on TinyFace's native LR faces (20x16 through the SR head); the SR head
# stays as learned jointly (frozen). Classifier and centres re-made for TinyFace's 2,570 identities.
_base_ = ['../_base_/models/vdsr-centreface.py', '../_base_/datasets/tinyface_sr_bs256.py',
          '../_base_/schedules/sgd-finetune_iter2k.py']

model = dict(
    freeze_sr=True,
    head=dict(heads=[
        dict(type='SoftmaxHead', in_channels=512, num_classes=2570),
        dict(type='CenterLoss', in_channels=512, num_classes=2570, loss_weight=0.003, alpha=0.5),
    ]),
)
load_from = 'work_dirs/sr-fr-joint_vdsr-centreface_1xb256_celeba-pairs/final.pth'
benchmark = dict(name='SR-FR joint (VDSR + CentreFace)')
