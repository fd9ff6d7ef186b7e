# Linear probe of the tiny pretrained encoder on the synthetic motion dataset:
# frozen backbone (MMEVisionTransformer(frozen=True): same weights layout as
# mmaction's VisionTransformer), mean pooling + its pretrained fc_norm, and a
# trained linear classifier. Weights come in through `load_from`.
_base_ = ['../recognition/tiny-vit_synthetic.py']

model = dict(
    backbone=dict(type='MMEVisionTransformer', frozen=True,
                  drop_path_rate=0.0),
    cls_head=dict(label_smooth_eps=0.0, dropout_ratio=0.0))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999),
                   weight_decay=0.0))
