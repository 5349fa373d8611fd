# SR then FR learned apart (LRFR paper Fig. 5b; Table 5 "VGGFace, SR: VDSR"): the VDSR trained alone on CelebA
# pairs is frozen; VGGFace starts from its CelebA pre-training and is fine-tuned on TinyFace's native LR faces
# super-resolved from 20x16 to 112x96, with a classifier re-made for TinyFace's 2,570 identities.
_base_ = ['../_base_/models/vdsr-vggface.py', '../_base_/datasets/tinyface_sr_bs256.py',
          '../_base_/schedules/sgd-finetune_iter2k.py']

model = dict(
    freeze_sr=True,
    sr=dict(init_cfg=dict(type='Pretrained', checkpoint='work_dirs/vdsr_1xb64_celeba-pairs/final.pth',
                          prefix='sr.')),
    head=dict(num_classes=2570),
)
optim_wrapper = dict(optimizer=dict(lr=0.001))  # a tenth of VGGFace's pre-training rate
load_from = 'work_dirs/vggface_1xb256_celeba/final.pth'  # FR weights; the SR head comes from its init_cfg
benchmark = dict(name='VDSR then VGGFace (independent)')
