# CSRI's two data branches on the demo (paper §3, Fig. 2): synthetic LR/HR pairs of the auxiliary faces and
# native LR faces with identities only, joined by a ConcatDataset; MultiBranchSampler puts 16 of each in every
# batch of 32, each branch cycling on its own.
_base_ = './demo_pairs.py'

train_dataloader = dict(
    _delete_=True,
    batch_size={{_base_.train_batch_size}},
    num_workers=0,
    sampler=dict(type='MultiBranchSampler', batch_size={{_base_.train_batch_size}},
                 source_ratio=dict(syn=1, nat=1)),
    dataset=dict(
        type='ConcatDataset',
        # each branch has its own identities (its own classifier), so their metainfo may differ
        ignore_keys=['classes', 'num_classes', 'branch'],
        datasets=[
            dict(type='DemoHRFaceDataset', data_root={{_base_.data_root}}, branch='syn',
                 pipeline={{_base_.pair_train_pipeline}}),
            dict(type='DemoTinyFaceDataset', data_root={{_base_.data_root}}, split='train', branch='nat',
                 pipeline={{_base_.native_train_pipeline}}),
        ]),
)
