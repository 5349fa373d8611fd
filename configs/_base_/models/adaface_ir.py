# AdaFace's IR net (Kim et al., CVPR 2022; mk-minchul/AdaFace net.py) as its released .ckpt files run: 112x112
# faces in BGR order ("our pretrained model takes the input in BGR", AdaFace README; its TinyFace script reads
# with cv2), scaled to [-1, 1] ((x / 255 - 0.5) / 0.5). The backbone returns the embedding before AdaFace's
# normalisation; flip_test also embeds the mirrored face, and the metric's sum-then-normalise of the two is
# AdaFace's default fusion (pre_norm_vector_add, = norm_weighted_avg after normalisation). No classifier:
# weights come from tools/model_converters/adaface_ir.py.
model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=127.5, to_rgb=False),
    backbone=dict(type='AdaFaceIR', depth=50, input_size=(112, 112), embed_dim=512),
    flip_test=True,
)
