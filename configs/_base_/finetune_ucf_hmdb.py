# The release's fine-tune recipe on UCF101 / HMDB51 (docs/release_spec.md
# 5.2): as finetune.py with 100 epochs and gradient accumulation 4.
_base_ = ['./finetune.py']

max_epochs = 100
# update_freq 4 of the release: accumulate 4 iterations per step.
optim_wrapper = dict(accumulative_counts=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, eta_min=1e-6,
         by_epoch=True, begin=5, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
# The lr scales with the optimizer-step batch (x4 accumulation x2 repeats).
auto_scale_lr = dict(base_batch_size=256 // 2 // 4)
