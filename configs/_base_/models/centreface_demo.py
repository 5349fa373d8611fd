# CentreFace (Wen et al. 2016) shrunk for the CPU demo: 56x48 input, quarter width, one unit per stage,
# 128-d embedding; softmax over the demo's 24 training identities.
model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=128.0),
    backbone=dict(type='CentreFaceNet', input_size=(56, 48), embed_dim=128, num_units=(1, 1, 1, 1),
                  width_mult=0.25),
    head=dict(type='SoftmaxHead', in_channels=128, num_classes=24),
)
