# CentreFace (Wen et al. 2016) shrunk for the CPU demo: 56x48 input, quarter width, one unit per stage,
# 128-d embedding, trained as the full configs are: softmax + centre loss (lambda 0.003, alpha 0.5).
# Two heads for the demo's disjoint identity sets: `aux_fr_head` over the 14 auxiliary HR identities (the
# CelebA role: pre-training, SR-FR joint, CSRI's synthetic branch) and `native_fr_head` over the 10 native LR
# training identities (the TinyFace role: fine-tuning, CSRI's native branch).
aux_fr_head = dict(
    type='CompositeHead',
    heads=[
        dict(type='SoftmaxHead', in_channels=128, num_classes=14),
        dict(type='CenterLoss', in_channels=128, num_classes=14, loss_weight=0.003, alpha=0.5),
    ])
native_fr_head = dict(
    type='CompositeHead',
    heads=[
        dict(type='SoftmaxHead', in_channels=128, num_classes=10),
        dict(type='CenterLoss', in_channels=128, num_classes=10, loss_weight=0.003, alpha=0.5),
    ])
model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=128.0),
    backbone=dict(type='CentreFaceNet', input_size=(56, 48), embed_dim=128, num_units=(1, 1, 1, 1),
                  width_mult=0.25),
    head=aux_fr_head,
)
