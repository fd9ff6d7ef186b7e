# A STOCK mmaction recognizer for fine-tuning a pretrained ViT-B/16 (the
# release's fine-tune model, docs/release_spec.md 5.2): mean pooling + fc_norm,
# drop path 0.1, label smoothing 0.1. The class count (and with it mixup /
# cutmix) comes from the dataset config (`_base_/datasets/`). The MME
# backbone comes in with `load_from` (tools/convert/).
_base_ = ['./vit-base-p16.py']

model = dict(
    type='Recognizer3D',
    backbone=dict(type='VisionTransformer', drop_path_rate=0.1),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes=400,  # the recipe sets the dataset's
        in_channels=768,
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
