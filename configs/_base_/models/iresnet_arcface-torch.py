# InsightFace arcface_torch's IResNet (Deng et al., CVPR 2019) as its released backbone.pth files run: 112x112
# RGB faces scaled to [-1, 1] ((x / 255 - 0.5) / 0.5, arcface_torch's inference.py), 512-d embedding, no
# dropout. flip_test also embeds the mirrored face; the metric sums the two and normalises, as arcface_torch's
# eval/verification.py does. No classifier: weights come from tools/model_converters/insightface_iresnet.py.
model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=127.5, to_rgb=True),
    backbone=dict(type='IResNet', depth=50, input_size=(112, 112), embed_dim=512),
    flip_test=True,
)
