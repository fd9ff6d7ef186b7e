# MME pretraining on Something-Something V2. The release has no SSv2 script
# (docs/release_spec.md 5.1); this is its K400 recipe (the recipe base of
# pretrain_k400.py) on the SSv2 pretraining dataset base, with VideoMAE's
# SSv2 sampling: 16 frames x stride 2 and L = 2
# (_base_/datasets/ssv2_mme_pretrain.py, which states them). 800 epochs (the
# README's SSv2-pretrained number, 69.2, is after 400). The targets are
# computed on the training device, as in pretrain_k400.py (the generator
# takes traj_len and the point spacing from the model's targets).
#   tools/dist_train.sh configs/mme/pretrain_ssv2.py 8
_base_ = [
    '../_base_/mme_pretrain.py', '../_base_/datasets/ssv2_mme_pretrain.py'
]

# The cross term: the targets are sized for the dataset's trajectory length.
model = dict(targets=dict(traj=dict(traj_len={{_base_.traj_len}}),
                          hog=dict(traj_len={{_base_.traj_len}})))

max_epochs, warmup_epochs = 800, 40
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1 / 15, by_epoch=True,
         begin=warmup_epochs, end=max_epochs,
         T_max=max_epochs - warmup_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
