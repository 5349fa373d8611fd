# SR-FR joint learning, step 1 (paper §3 (I), eq. 3): VDSR + CentreFace trained end to end on the auxiliary
# LR/HR pairs with L = L_fr + 0.003 * L_sr. This is CSRI's synthetic branch and its stage 1.
_base_ = ['../_base_/models/vdsr-centreface_demo.py', '../_base_/datasets/demo_pairs.py',
          '../_base_/schedules/demo_iter300.py']
