# SR then FR learned apart (paper Fig. 5b, Table 5 "SR" rows, Table 6 "independent"): the VDSR trained alone
# is frozen; CentreFace starts from its HR pre-training and is fine-tuned on super-resolved native LR faces.
_base_ = ['../_base_/models/vdsr-centreface_demo.py', '../_base_/datasets/demo_tinyface_sr.py',
          '../_base_/schedules/demo_iter300.py']

model = dict(
    freeze_sr=True,
    head={{_base_.native_fr_head}},  # new head for the 10 native identities
    sr=dict(init_cfg=dict(type='Pretrained', checkpoint='work_dirs/vdsr_1xb32_demo-pairs/final.pth',
                          prefix='sr.')),
)
load_from = 'work_dirs/centreface_1xb32_demo-hr/final.pth'  # FR weights; SR comes from its init_cfg
optim_wrapper = dict(optimizer=dict(lr=0.005))  # 0.4x pre-training: a tenth under-fits the new classifier in 300 its
benchmark = dict(name='VDSR then CentreFace (independent)', row=2)
