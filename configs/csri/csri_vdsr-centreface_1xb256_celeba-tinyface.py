# CSRI, step 2 (LRFR paper §3 (II), eq. 4; Table 5 "CSRI", Table 7 with CSR): VDSR-20 and CentreFace shared by
# the synthetic branch (CelebA LR/HR pairs, classifier `head` over 10,177 identities, continued from stage 1)
# and the native branch (TinyFace LR faces, classifier `native_head` over 2,570 identities, new), 128 + 128 per
# batch; L = L_fr_syn + L_fr_nat + 0.003 * L_sr, logged apart (syn_*, nat_*, loss_sr). Initialised from the SR-FR
# joint stage 1 (configs/sr_fr/). Deployment and test: native LR -> SR -> CentreFace embedding, Euclidean.
_base_ = ['../_base_/models/vdsr-centreface.py', '../_base_/datasets/celeba-tinyface_csri_bs256.py',
          '../_base_/schedules/sgd-finetune_iter4k.py']

model = dict(
    type='CSRI',
    native_head=dict(
        type='CompositeHead',
        heads=[
            dict(type='SoftmaxHead', in_channels=512, num_classes=2570),
            dict(type='CenterLoss', in_channels=512, num_classes=2570, loss_weight=0.003, alpha=0.5),
        ]),
)
# the SR head trains again, clipped on its own as in stage 1; the FR network's clip is a safety net
optim_wrapper = dict(clip_grad=dict(max_norm=40.0, parts=dict(sr=dict(max_norm=10.0))))
load_from = 'work_dirs/sr-fr-joint_vdsr-centreface_1xb256_celeba-pairs/final.pth'
benchmark = dict(name='CSRI (VDSR + CentreFace)')
