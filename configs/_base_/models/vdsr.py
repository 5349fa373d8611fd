# VDSR (Kim et al., CVPR 2016): 20 3x3 layers of 64 channels with global residual learning on the
# bicubic-up-sampled face: LR (20x16) -> SR at the 112x96 FR input; CSRI's SR component (Cheng et al. 2018).
# Only the SR head: combine it with SuperResolver or SRFaceRecognizer in the config.
sr_head = dict(type='VDSR', mid_channels=64, num_layers=20, output_size=(112, 96))
