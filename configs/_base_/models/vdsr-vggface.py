# VDSR then VGGFace in one model (SRFaceRecognizer): the 20x16 LR face is super-resolved to 112x96, then
# recognised. Trained jointly with L = L_fr + lambda_sr * L_sr (LRFR paper eq. 3, lambda_sr = 0.003), or with
# the SR head frozen (freeze_sr=True: the paper's independent SR-FR learning, Fig. 5b).
_base_ = ['./vggface.py', './vdsr.py']

model = dict(type='SRFaceRecognizer', sr={{_base_.sr_head}}, lambda_sr=0.003)
