# A tiny STOCK mmaction recognizer (Recognizer3D + VisionTransformer +
# TimeSformerHead) on the synthetic motion dataset. Used by the tests and as
# the "no pretraining" baseline. Runs on CPU.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/datasets/synthetic_motion_recognition.py'
]

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='VisionTransformer',
        img_size=64,
        patch_size=16,
        embed_dims=96,
        depth=2,
        num_heads=3,
        mlp_ratio=4,
        qkv_bias=True,
        num_frames=8,
        norm_cfg=dict(type='LN', eps=1e-6)),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes={{_base_.num_classes}},
        in_channels=96,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=9, eta_min=1e-5, by_epoch=True,
         begin=1, end=10)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
