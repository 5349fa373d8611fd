# VDSR (Kim et al. 2016) then CentreFace, shrunk for the CPU demo: a 6-layer, 16-channel VDSR up-samples the
# 20x16 LR face to the 56x48 FR input. SR and FR in one model (SRFaceRecognizer); lambda_sr = 0.003 (paper).
_base_ = './centreface_demo.py'

model = dict(
    type='SRFaceRecognizer',
    sr=dict(type='VDSR', mid_channels=16, num_layers=6, output_size=(56, 48)),
    lambda_sr=0.003,
)
