# A tiny STOCK mmaction recognizer (Recognizer3D + VisionTransformer +
# TimeSformerHead) on the synthetic motion dataset, trained from scratch: the
# "no pretraining" baseline. Its encoder is the one that
# configs/mme/pretrain_tiny_synthetic.py pretrains (patch 8, 256 tokens).
# Runs on CPU. A plain recipe that fits training from scratch (AdamW 1e-3,
# no label smoothing, drop path or layer decay, 40 epochs = 800 steps on
# 320 clips); finetune_tiny_synthetic.py uses the fine-tune recipe.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/vit-base-p16_finetune.py',
    '../_base_/datasets/synthetic_motion_recognition.py'
]

# The stock recognizer of the ViT-B recipes, scaled down.
embed_dims, depth = 128, 4
model = dict(
    backbone=dict(img_size=64, patch_size=8, embed_dims=embed_dims,
                  depth=depth, num_heads=4, num_frames=8,
                  drop_path_rate=0.0),
    cls_head=dict(num_classes={{_base_.num_classes}},
                  in_channels=embed_dims, label_smooth_eps=0.0))

max_epochs = 40
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 3, eta_min_ratio=0.01,
         by_epoch=True, begin=3, end=max_epochs, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    checkpoint=dict(interval=5, max_keep_ckpts=2, save_best='auto'),
    logger=dict(interval=10))
# Per-iteration torch seeds: a killed run resumes to the same weights.
# NonFiniteLossHook (also in default_runtime.py; a list here replaces
# the base's): a non-finite loss / checkpoint / score stops the run.
custom_hooks = [dict(type='ReseedHook'), dict(type='NonFiniteLossHook')]
