# pretrain_k400_dis.py with repeated sampling: each video is decoded once
# and gives 2 samples (different offsets, crops, masks; RepeatAugVideoDataset,
# as MAE-ST pretrains with repeats to amortize decoding). On K400-length
# videos decoding is most of a worker's time, so this lifts one worker from
# ~11-13 to ~14-16.5 samples/s (docs/benchmarks.md); num_repeats = 4
# (MAE-ST's factor) gives ~20-23: copy this file and change it, everything
# below follows.
# Same number of samples and steps as the 1600-epoch recipe: 32 videos x 2
# repeats = 64 samples per GPU, 800 epochs (each sees every video twice),
# warmup 20 epochs (= 40 of the recipe). auto_scale_lr counts videos, so
# its base is 1024 / 2.
#   tools/dist_train.sh configs/mme/pretrain_k400_dis_rep2.py 8
_base_ = ['./pretrain_k400_dis.py']

num_repeats = 2
train_dataloader = dict(
    batch_size=64 // num_repeats,
    # mme_collate flattens each video's repeats (as repeat_pseudo_collate)
    collate_fn=dict(type='mme_collate'),
    dataset=dict(type='RepeatAugVideoDataset', num_repeats=num_repeats))

max_epochs = 1600 // num_repeats
warmup_epochs = 40 // num_repeats
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1 / 15, by_epoch=True,
         begin=warmup_epochs, end=max_epochs,
         T_max=max_epochs - warmup_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=50 // num_repeats))
auto_scale_lr = dict(enable=True, base_batch_size=1024 // num_repeats)
