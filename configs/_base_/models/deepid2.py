# DeepID2 (Sun et al., NIPS 2014): one ConvNet (two convolutions, locally shared and locally connected layers,
# 160-d DeepID2 layer) on the whole 112x96 face, the FR input size the LRFR paper uses for every model; the
# locally connected layers are sized for it. Trained with softmax (identification) over the 10,177 CelebA
# identities; the original verification term is not used (see docs/csri.md).
model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=128.0),
    backbone=dict(type='DeepID2', input_size=(112, 96), embed_dim=160),
    head=dict(type='SoftmaxHead', in_channels=160, num_classes=10177),
)
