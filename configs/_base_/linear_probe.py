# Linear probe of an MME-pretrained ViT-B/16: every backbone parameter
# frozen (fc_norm too: it carries the pretrained final LayerNorm), a linear
# classifier on mean-pooled tokens, trained on the dataset's validation-style
# views (no RandAugment, erasing, mixup / cutmix or drop path, unlike the
# release's probe; release spec 5.3, 8.17). A config under configs/mme/ adds
# the dataset and its class count.
_base_ = ['./finetune.py']

model = dict(
    backbone=dict(type='MMEVisionTransformer', frozen=True,
                  drop_path_rate=0.0),
    cls_head=dict(label_smooth_eps=0.0, dropout_ratio=0.0),
    data_preprocessor=dict(blending=None))
max_epochs = 30
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    # bf16 where the GPU supports it, else fp16 with a dynamic loss scale
    # (mme_plugin.utils.amp.resolve_amp_dtype; logged at start)
    dtype='auto',
    loss_scale='auto',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.0))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-6,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(enable=True, base_batch_size=256)
