# SR-FR joint learning, step 1 (LRFR paper §3 (I), eq. 3; CSRI's synthetic branch and its stage 1): VDSR-20 +
# CentreFace trained end to end on CelebA LR/HR pairs (all 10,177 identities) with
# L = L_fr + 0.003 * L_sr, L_fr = softmax + centre loss, L_sr = the per-image Euclidean loss. caffe-face's solver;
# gradient-norm clipping as a safety net for the 20-layer VDSR at lr 0.1 (VDSR itself trains with clipping).
_base_ = ['../_base_/models/vdsr-centreface.py', '../_base_/datasets/celeba_pairs_bs256.py',
          '../_base_/schedules/sgd_iter28k.py']

# The SR head's gradient is clipped on its own (VDSR trains with clipping), the FR network's only as a safety net:
# a global clip let the young SR head's per-image Euclidean gradient (norms up to 3,700) shrink every FR step.
optim_wrapper = dict(clip_grad=dict(max_norm=40.0, parts=dict(sr=dict(max_norm=10.0))))
