# SphereFace (Liu et al., CVPR 2017): sphere20a, the 20-layer net of the paper's Table 2, on 112x96 faces with
# a 512-d embedding, trained with A-Softmax (m = 4). The softmax/A-Softmax blend weight lambda is annealed by
# ASoftmaxLambdaHook with the authors' schedule max(5, 1000 / (1 + 0.12 * iter)); the hook is part of the
# model's recipe, so it lives here. 10,177 classes: all CelebA identities.
model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=128.0),
    backbone=dict(type='SphereFaceNet', depth=20, input_size=(112, 96), embed_dim=512),
    head=dict(type='ASoftmaxHead', in_channels=512, num_classes=10177, margin=4),
)
custom_hooks = [dict(type='ASoftmaxLambdaHook', base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0)]
