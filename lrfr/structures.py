"""Names shared by datasets, models and metrics, defined once.

A data sample (``mmpretrain.structures.DataSample``) produced by lrfr pipelines carries:

* ``gt_label``: identity label (``DISTRACTOR_LABEL`` for unlabelled gallery distractors);
* metainfo ``branch``: which training branch it belongs to (``BRANCH_SYN`` or ``BRANCH_NAT``);
* metainfo ``subset``: ``SUBSET_TRAIN``, ``SUBSET_PROBE`` or ``SUBSET_GALLERY``;
* metainfo ``img_path`` and ``sample_idx`` (index in its dataset, which fixes the official order);
* data field ``hr_img`` (synthetic LR/HR pairs only): the HR target, a CHW tensor.
"""

#: Synthetic branch: auxiliary LR made by down-sampling HR faces; carries ``hr_img``.
BRANCH_SYN = 'syn'
#: Native branch: native LR faces with identity labels only.
BRANCH_NAT = 'nat'
BRANCHES = (BRANCH_SYN, BRANCH_NAT)

SUBSET_TRAIN = 'train'
SUBSET_PROBE = 'probe'
SUBSET_GALLERY = 'gallery'

#: Label of unlabelled gallery distractors, as in the official TinyFace code.
DISTRACTOR_LABEL = -100
