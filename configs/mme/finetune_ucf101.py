# Fine-tune an MME-pretrained (K400) ViT-B/16 on UCF101, split 1 (release:
# base lr 1e-3, 100 epochs, gradient accumulation 4, 16x4, test 10 clips x 3
# crops; docs/release_spec.md 5.2). Expected: 96.5 top-1. Other splits: set
# split=2|3 in _base_/datasets/ucf101.py (tools/data/build_lists.py ucf101
# writes all three lists).
_base_ = ['../_base_/finetune_ucf_hmdb.py', '../_base_/datasets/ucf101.py']

model = dict(cls_head=dict(num_classes={{_base_.num_classes}}),
             data_preprocessor=dict(blending={{_base_.mixup_cutmix}}))
# repeated augmentation x2 (release num_sample=2), _base_/finetune.py
train_dataloader = {{_base_.repeated_augmentation}}
