# Linear probe of an MME-pretrained ViT-B/16 on ssv2: every backbone
# parameter frozen (fc_norm too: it carries the pretrained final LayerNorm),
# a linear classifier on mean-pooled tokens. Unlike the release's probe
# (release spec 5.3, 8.17) no mixup/cutmix, RandAugment, erasing or drop path.
#   tools/dist_train.sh configs/mme/linear_ssv2.py 8 \
#       --cfg-options load_from=backbone.pth
_base_ = ['./finetune_ssv2.py']

model = dict(
    backbone=dict(type='MMEVisionTransformer', frozen=True,
                  drop_path_rate=0.0),
    cls_head=dict(label_smooth_eps=0.0, dropout_ratio=0.0),
    data_preprocessor=dict(blending=None))
train_dataloader = dict(
    _delete_=True,
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    dataset=dict(
        type='CheckedVideoDataset',
        num_classes={{_base_.num_classes}},
        ann_file={{_base_.ann_file_train}},
        data_prefix=dict(video={{_base_.data_root}}),
        pipeline={{_base_.val_pipeline}}))
max_epochs = 30
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.0))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-6,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(enable=True, base_batch_size=256)
