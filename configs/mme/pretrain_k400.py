# MME pretraining on Kinetics-400, the released recipe (release spec 5.1):
# ViT-B/16, 16 frames x stride 4, 224x224, tube mask 0.7, trajectories of
# L = 4 raw-rate steps per tube, PatchStd, HOG along the trajectories, 1600
# epochs (40 warmup), total batch 1024 (64 per GPU x 16 GPUs; auto_scale_lr
# rescales the lr for other totals).
#   tools/dist_train.sh configs/mme/pretrain_k400.py 8
# Data: mmaction's K400 video list (`path label` lines).
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
    '../_base_/default_runtime.py', '../_base_/models/mme_vit-base-p16.py',
    '../_base_/schedules/mme_pretrain_adamw.py'
]

data_root = 'data/kinetics400/videos_train'
ann_file = 'data/kinetics400/kinetics400_train_list_videos.txt'
clip_len, frame_interval, traj_len = 16, 4, 4
train_pipeline = [
    dict(type='VideoInit'),
    dict(type='MMESampleFrames', clip_len=clip_len,
         frame_interval=frame_interval, tubelet_size=2, traj_len=traj_len),
    dict(type='VideoDecode', extra_keys=('dense_frame_inds', )),
    dict(type='MotionMultiScaleCrop', input_size=224,
         scales=(1, .875, .75, .66), random_crop=False, max_wh_scale_gap=1,
         num_fixed_crops=13),
    dict(type='MotionResize', scale=(224, 224), keep_ratio=False),
    # the cropped dense frames for the model's MotionTargetGenerator
    dict(type='PrepareMotionInputs'),
    dict(type='TubeMasking', mask_ratio=0.7, patch_size=16, tubelet_size=2),
    dict(type='FormatShape', input_format='NCTHW'),
    # packs every MME key the pipeline added (MME_ALGORITHM_KEYS)
    dict(type='PackMMEInputs')
]

# Flow (release Farneback: 5 levels, pyramid 0.5, window 13, 10 iterations,
# poly_n 5, sigma 1.1), tracking on the 8 px grid of the trajectory target,
# photometric and shot-cut checks (the forward-backward check needs backward
# flow, twice the flow cost: reliability=dict(fb_check=True)), PatchStd
# targets; HOG along the tracked points by the hog target's PointHOG.
model = dict(
    target_generator=dict(type='MotionTargetGenerator',
                          reliability=dict(fb_check=False),
                          targets=dict(norm='patch_std')),
    targets=dict(hog=dict(source='device')))

# One tensor per key and batch (mme_collate): ~10 shared-memory files per
# batch instead of ~640, one host-to-device copy per key (pinned memory).
# A batch is ~540 MiB (the dense frames, motion_frames, are 2/3 of it); with prefetch_factor=1
# each worker holds one batch ahead: 10 workers ~5.3 GiB of /dev/shm per
# GPU (training checks the size at start-up; docs/benchmarks.md). A batch
# averages 64 clips, so its time varies little and one batch ahead keeps
# the workers busy; set 2 where /dev/shm allows and data_time shows waits.
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

max_epochs = 1600
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1 / 15, by_epoch=True,
         begin=40, end=max_epochs, T_max=max_epochs - 40,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)

# A checkpoint every 50 epochs (kept) plus the latest, for resuming.
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=-1,
                    save_last=True, save_best=None),
    logger=dict(type='LoggerHook', interval=50))

# Per-sample seeds from (seed, epoch, index) and per-iteration torch seeds:
# a resumed run reproduces the uninterrupted one (tests/test_resume.py).
# NonFiniteLossHook (also in default_runtime.py; a list here replaces
# the base's): a non-finite loss / checkpoint / score stops the run.
# CollapseMonitorHook: collapse measures of the encoder on 16 fixed train
# clips every 500 iterations (one no-grad forward, main process only):
# flags an input-independent encoder (docs/synthetic_benchmark.md).
custom_hooks = [dict(type='ReseedHook'), dict(type='NonFiniteLossHook'),
                dict(type='CollapseMonitorHook', interval=500)]
