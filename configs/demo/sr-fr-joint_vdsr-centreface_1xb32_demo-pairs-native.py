# SR-FR joint learning, step 2 (paper §5.3, Table 6 "joint", Table 7 without CSR): the jointly trained model's FR
# part is fine-tuned on native LR faces; the SR part stays as learned jointly.
_base_ = ['../_base_/models/vdsr-centreface_demo.py', '../_base_/datasets/demo_tinyface_sr.py',
          '../_base_/schedules/demo_iter300.py']

model = dict(freeze_sr=True, head={{_base_.native_fr_head}})  # new head for the 10 native identities
load_from = 'work_dirs/sr-fr-joint_vdsr-centreface_1xb32_demo-pairs/final.pth'
optim_wrapper = dict(optimizer=dict(lr=0.005))  # 0.4x pre-training: a tenth under-fits the new classifier in 300 its
benchmark = dict(name='SR-FR joint (VDSR + CentreFace)', row=3)
