# CentreFace (Wen et al., ECCV 2016) at the paper's size: the 27-layer PReLU residual net on 112x96 faces,
# 512-d fc5 embedding, trained with softmax + centre loss (lambda = 0.003, alpha = 0.5, the paper's face
# setting). 10,177 classes: all CelebA identities, the auxiliary set of the LRFR paper (Cheng et al. 2018).
model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=128.0),
    backbone=dict(type='CentreFaceNet', input_size=(112, 96), embed_dim=512, num_units=(1, 2, 5, 3)),
    head=dict(
        type='CompositeHead',
        heads=[
            dict(type='SoftmaxHead', in_channels=512, num_classes=10177),
            dict(type='CenterLoss', in_channels=512, num_classes=10177, loss_weight=0.003, alpha=0.5),
        ]),
)
