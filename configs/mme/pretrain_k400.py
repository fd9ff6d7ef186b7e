# MME pretraining on Kinetics-400, the released recipe (release spec 5.1):
# ViT-B/16, 16 frames x stride 4, 224x224, tube mask 0.7, trajectories of
# L = 4 raw-rate steps per tube, PatchStd, HOG along the trajectories, 1600
# epochs (40 warmup), total batch 1024 (64 per GPU x 16 GPUs; auto_scale_lr
# rescales the lr for other totals).
#   tools/dist_train.sh configs/mme/pretrain_k400.py 8
# The recipe base (_base_/mme_pretrain.py: model, optimizer, hooks) with the
# K400 pretraining dataset base (_base_/datasets/k400_mme_pretrain.py: list,
# geometry, pipeline, loader).
#
# Targets on the training device (docs/mme_design.md, "Where the targets are
# computed"): the data workers only decode, crop and resize the dense
# frames; the model's MotionTargetGenerator computes the release's
# Farneback flow (PyTorch, equal to OpenCV's to float rounding), the
# trajectories, the reliability checks, the trajectory targets and HOG along
# the trajectories for the whole batch, before the loss. No flow cache.
# pretrain_k400_worker.py is the same recipe with all of that in the data
# workers (OpenCV Farneback on the decoded frames, optionally from a flow
# cache).
_base_ = [
    '../_base_/mme_pretrain.py', '../_base_/datasets/k400_mme_pretrain.py'
]

# The cross term: the targets are sized for the dataset's trajectory length.
model = dict(targets=dict(traj=dict(traj_len={{_base_.traj_len}}),
                          hog=dict(traj_len={{_base_.traj_len}})))

max_epochs, warmup_epochs = 1600, 40
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1 / 15, by_epoch=True,
         begin=warmup_epochs, end=max_epochs,
         T_max=max_epochs - warmup_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
