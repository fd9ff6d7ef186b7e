# A STOCK mmaction recognizer for fine-tuning a pretrained ViT-B/16 (the
# release's fine-tune model, docs/release_spec.md 5.2): mean pooling + fc_norm,
# drop path 0.1, label smoothing 0.1, mixup 0.8 / cutmix 1.0 (switch 0.5).
# The MME backbone comes in with `load_from` (tools/convert/).
num_classes = 400
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='VisionTransformer',
        img_size=224,
        patch_size=16,
        embed_dims=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4,
        qkv_bias=True,
        num_frames=16,
        tubelet_size=2,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6)),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes=num_classes,
        in_channels=768,
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        blending=dict(
            type='RandomBatchAugment',
            augments=[
                dict(type='MixupBlending', alpha=0.8,
                     num_classes=num_classes),
                dict(type='CutmixBlending', alpha=1.0,
                     num_classes=num_classes)
            ]),
        format_shape='NCTHW'))
