# Fine-tune schedule of the release (docs/release_spec.md 5.2): AdamW betas
# (0.9, 0.999), wd 0.05, layer-wise lr decay 0.75 over the 12 blocks, 5 warmup
# epochs, cosine to 1e-6, AMP. `base_lr` is per 256 samples; with repeated
# augmentation x2 every loaded clip counts twice, hence base_batch_size 128.
max_epochs = 75
warmup_epochs = 5
base_lr = 1e-3
# AMP precision, chosen at start (mme_plugin/utils/amp.py, logged): 'auto'
# = bf16 without loss scaling where the GPU supports it (A100, H100, ...),
# else fp16 with a dynamic loss scale (V100: an overflowing step is skipped).
# fp16 without a scaler is refused (most gradients underflow to 0). To pin:
# dtype='float16', loss_scale='dynamic' or dtype='bfloat16'. On a CPU the
# recipe trains in fp32.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='auto',
    loss_scale='auto',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.75, decay_type='layer_wise',
                       num_layers=12))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=True, base_batch_size=256 // 2)
