# Fine-tune the tiny MME-pretrained encoder on the synthetic motion dataset
# with the stock recognizer. The pretrained weights come in through
# `load_from` (a backbone checkpoint written by
# tools/convert/mme_to_recognizer.py):
#   python tools/train.py configs/mme/finetune_tiny_synthetic.py \
#       --cfg-options load_from=work_dirs/.../backbone.pth
_base_ = ['../recognition/tiny-vit_synthetic.py']

# The fine-tune recipe of the MME / VideoMAE releases, scaled down: drop path
# 0.1, label smoothing 0.1, layer-wise lr decay 0.75, 20 epochs.
depth, max_epochs = 4, 20
model = dict(backbone=dict(drop_path_rate=0.1),
             cls_head=dict(label_smooth_eps=0.1))
optim_wrapper = dict(
    constructor='LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.75, decay_type='layer_wise',
                       num_layers=depth))
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 3, eta_min_ratio=0.01,
         by_epoch=True, begin=3, end=max_epochs, convert_to_iter_based=True)
]
