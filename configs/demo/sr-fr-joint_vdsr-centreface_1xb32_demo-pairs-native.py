# SR-FR joint learning, step 2 (paper §5.3, Table 6 "joint", Table 7 without CSR): the jointly trained model's FR
# part is fine-tuned on native LR faces; the SR part stays as learned jointly.
_base_ = ['../_base_/models/vdsr-centreface_demo.py', '../_base_/datasets/demo_tinyface_sr.py',
          '../_base_/schedules/demo_iter300.py']

model = dict(freeze_sr=True)
load_from = 'work_dirs/sr-fr-joint_vdsr-centreface_1xb32_demo-pairs/final.pth'
optim_wrapper = dict(optimizer=dict(lr=0.01))
benchmark = dict(name='SR-FR joint (VDSR + CentreFace)', row=3)
