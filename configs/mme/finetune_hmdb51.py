# Fine-tune an MME-pretrained (K400) ViT-B/16 on HMDB51, split 1 (release
# recipe as UCF101; docs/release_spec.md 5.2). Expected: 78.0 top-1.
_base_ = ['../_base_/finetune_ucf_hmdb.py', '../_base_/datasets/hmdb51.py']

model = dict(cls_head=dict(num_classes={{_base_.num_classes}}),
             data_preprocessor=dict(blending={{_base_.mixup_cutmix}}))
# repeated augmentation x2 (release num_sample=2), _base_/finetune.py
train_dataloader = {{_base_.repeated_augmentation}}
