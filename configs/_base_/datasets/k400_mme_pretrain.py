# Kinetics-400 videos for MME pretraining (as mmpretrain's pretraining
# dataset bases, e.g. imagenet_bs512_mae.py): the train list, the geometry,
# the pipeline's steps and the loader, for the recipe base
# `_base_/mme_pretrain.py`. Data: mmaction's K400 video list (`path label`
# lines; the labels are not used).
data_root = 'data/kinetics400/videos_train'
ann_file = 'data/kinetics400/kinetics400_train_list_videos.txt'

# Geometry, stated once for every pipeline built from the steps below
# (release spec 5.1): 16 frames x stride 4 at 224 x 224, tubes of 2 frames
# x 16 x 16 px, L = 4 raw-rate trajectory steps per tube from points on an
# 8 px grid (2 x 2 per patch). A recipe sets its model's targets to this
# traj_len (the cross term of configs/mme/pretrain_*.py); the encoder's
# sizes are the model's (_base_/models/vit-base-p16.py), and tools/train.py
# checks that pipeline and model agree before the first iteration
# (mme_plugin/utils/config_checks.py).
clip_len, frame_interval, traj_len = 16, 4, 4
img_size, patch_size, tubelet_size, grid_step = 224, 16, 2, 8

# The steps every pretraining pipeline of this family shares, named so that
# a config lists them in its order (`[*_base_.sample_steps, ...]`, mmengine's
# Python-config access to a base's variables; docs/mme_design.md, "How the
# configs are built"): the flow and target steps differ by placement and
# go between them.
# Sample the clip and the dense frames its trajectories need, and decode.
sample_steps = [
    dict(type='VideoInit'),
    dict(type='MMESampleFrames', clip_len=clip_len,
         frame_interval=frame_interval, tubelet_size=tubelet_size,
         traj_len=traj_len),
    dict(type='VideoDecode', extra_keys=('dense_frame_inds', )),
]
# Crop and resize the frames (and any flow computed before them).
crop_steps = [
    dict(type='MotionMultiScaleCrop', input_size=img_size,
         scales=(1, .875, .75, .66), random_crop=False, max_wh_scale_gap=1,
         num_fixed_crops=13),
    dict(type='MotionResize', scale=(img_size, img_size), keep_ratio=False),
]
# Mask tubes and pack.
mask_steps = [
    dict(type='TubeMasking', mask_ratio=0.7, patch_size=patch_size,
         tubelet_size=tubelet_size),
    dict(type='FormatShape', input_format='NCTHW'),
    # packs every MME key the pipeline added (MME_ALGORITHM_KEYS)
    dict(type='PackMMEInputs')
]

# The device placement of the released recipe (docs/mme_design.md, "Where
# the targets are computed"): the data workers only decode, crop and resize
# the dense frames; PrepareMotionInputs hands them to the model's
# MotionTargetGenerator (`_base_/mme_pretrain.py`).
# pretrain_k400_worker.py and pretrain_k400_dis.py put flow and targets in
# the workers instead.
train_pipeline = [
    *sample_steps,
    *crop_steps,
    dict(type='PrepareMotionInputs'),
    *mask_steps,
]

# One tensor per key and batch (mme_collate): ~10 shared-memory files per
# batch instead of ~640, one host-to-device copy per key (pinned memory).
# A batch is ~540 MiB (the dense frames, motion_frames, are 2/3 of it);
# with prefetch_factor=1 each worker holds one batch ahead: 10 workers
# ~5.3 GiB of /dev/shm per GPU (training checks the size at start-up;
# docs/benchmarks.md). A batch averages 64 clips, so its time varies
# little and one batch ahead keeps the workers busy; set 2 where /dev/shm
# allows and data_time shows waits.
train_dataloader = dict(
    batch_size=64,
    num_workers=10,
    persistent_workers=True,
    prefetch_factor=1,
    pin_memory=True,
    collate_fn=dict(type='mme_collate'),
    sampler=dict(type='SeededSampler', shuffle=True),
    dataset=dict(
        type='CheckedVideoDataset',
        ann_file=ann_file,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
