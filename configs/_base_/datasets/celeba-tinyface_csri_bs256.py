# CSRI's two data branches (LRFR paper §3, Fig. 2): the synthetic branch (CelebA LR/HR pairs with identities,
# celeba_pairs_bs256.py, LR up-sampled back to 112x96) and the native branch (TinyFace training faces resized
# once to 112x96 from their native size, identities only), joined by a ConcatDataset; both reach the SR head
# at 112x96, so a batch is one tensor. MultiBranchSampler puts 128 of each in every batch of 256, each branch
# cycling on its own (TinyFace's 7,804 faces ~26 times as often as CelebA's 202,599). Tested on TinyFace through
# the SR head.
_base_ = './celeba_pairs_bs256.py'

train_dataloader = dict(
    _delete_=True,
    batch_size={{_base_.train_batch_size}},
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    prefetch_factor=4,
    # the batch's faces in one shared-memory storage (one segment per batch, not per face): up to 3x the faces
    # per worker (docs/benchmark.md, "Feeding a GPU"); the batch is the same as pseudo_collate's
    collate_fn=dict(type='face_collate'),
    sampler=dict(type='MultiBranchSampler', batch_size={{_base_.train_batch_size}},
                 source_ratio=dict(syn=1, nat=1)),
    dataset=dict(
        type='ConcatDataset',
        # the branches have their own label spaces (CelebA and TinyFace identities)
        ignore_keys=['classes', 'num_classes'],
        datasets=[
            dict(type='CelebADataset', data_root={{_base_.celeba_root}}, split='all', branch='syn',
                 pipeline={{_base_.pair_train_pipeline}}),
            dict(type='TinyFaceDataset', data_root={{_base_.tinyface_root}}, split='train', branch='nat',
                 pipeline={{_base_.native_train_pipeline}}),
        ]),
)
