# Fine-tune an MME-pretrained ViT-B/16 on Something-Something V2 (release:
# base lr 5e-4, 30 epochs, 16 TSN segments, test 2 clips x 3 crops, NO flip;
# release spec 5.2). Expected: 70.5 top-1 with K400-pretrained 800 epochs.
_base_ = ['../_base_/finetune.py', '../_base_/datasets/ssv2.py']

model = dict(cls_head=dict(num_classes={{_base_.num_classes}}),
             data_preprocessor=dict(blending={{_base_.mixup_cutmix}}))
# repeated augmentation x2 (release num_sample=2), _base_/finetune.py
train_dataloader = {{_base_.repeated_augmentation}}

max_epochs = 30
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, eta_min=1e-6,
         by_epoch=True, begin=5, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
