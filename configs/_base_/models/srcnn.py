# SRCNN (Dong et al., ECCV 2014 / TPAMI 2016), the 9-1-5 net with 64/32 channels, on the bicubic-up-sampled
# face: LR (20x16, TinyFace's mean size) -> SR at the 112x96 FR input. Only the SR head: combine it with
# SuperResolver (SR-only training) or SRFaceRecognizer (SR then FR) in the config.
sr_head = dict(type='SRCNN', mid_channels=(64, 32), kernel_sizes=(9, 1, 5), output_size=(112, 96))
