# CSRI, step 2 (paper §3 (II), eq. 4; Table 5 "CSRI", Table 7 with CSR): SR and FR shared by the synthetic
# branch (auxiliary pairs, classifier `head`) and the native branch (native LR, classifier `native_head`),
# L = L_fr_syn + L_fr_nat + 0.003 * L_sr, initialised from the SR-FR joint step 1.
_base_ = ['../_base_/models/vdsr-centreface_demo.py', '../_base_/datasets/demo_csri.py',
          '../_base_/schedules/demo_iter300.py']

model = dict(
    type='CSRI',
    native_head={{_base_.native_fr_head}},  # 10 native identities, softmax + centre loss as `head`
)
load_from = 'work_dirs/sr-fr-joint_vdsr-centreface_1xb32_demo-pairs/final.pth'
optim_wrapper = dict(optimizer=dict(lr=0.005))  # 0.4x pre-training: a tenth under-fits the new classifier in 300 its
benchmark = dict(name='CSRI (VDSR + CentreFace)', row=4)
