# MME / VideoMAE pretraining schedule (docs/release_spec.md 5.1): AdamW, betas
# (0.9, 0.95), wd 0.05 (none on norms, biases, position table, mask token),
# base lr 1.5e-4 per 256 samples -> 6e-4 at the total batch of 1024, scaled
# to the real batch by auto_scale_lr; 40 warmup epochs, per-iteration cosine
# to 1e-5 per 256 (ratio 1/15). AMP on GPUs (bf16, or fp16 + loss scale).
# The epochs differ by dataset, so each recipe states its param_scheduler
# (LinearLR warmup, then CosineAnnealingLR with eta_min_ratio=1 / 15, both
# convert_to_iter_based) and train_cfg, with their ends (docs/mme_design.md,
# "How the configs are built"); none here.

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
    optimizer=dict(
        type='AdamW', lr=1.5e-4 * 1024 / 256, betas=(0.9, 0.95),
        weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'mask_token': dict(decay_mult=0.0),
            'q_bias': dict(decay_mult=0.0),
            'v_bias': dict(decay_mult=0.0)
        }))

auto_scale_lr = dict(enable=True, base_batch_size=1024)

