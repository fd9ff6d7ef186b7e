# MME pretraining on Kinetics-400, the released recipe of pretrain_k400.py
# with the motion targets computed in the data workers (the worker
# placement, docs/mme_design.md): OpenCV Farneback with the release's
# settings on the decoded frames (the flow is then cropped and resized with
# them), tracking, reliability checks and targets per clip on the CPU, about
# 1.1 s per clip and worker (docs/benchmarks.md), or read from a flow cache
# filled offline by tools/data/extract_trajectories.py. Use it where the
# training device has no time to spare for the targets or a flow cache
# exists.
#   tools/dist_train.sh configs/mme/pretrain_k400_worker.py 8
_base_ = ['./pretrain_k400.py']

data_root = 'data/kinetics400/videos_train'
ann_file = 'data/kinetics400/kinetics400_train_list_videos.txt'
# Optional flow cache filled offline by tools/data/extract_trajectories.py
# (None = flow computed on the fly).
flow_cache_dir = None

clip_len, frame_interval, traj_len = 16, 4, 4
train_pipeline = [
    dict(type='VideoInit'),
    dict(type='MMESampleFrames', clip_len=clip_len,
         frame_interval=frame_interval, tubelet_size=2, traj_len=traj_len),
    dict(type='VideoDecode', extra_keys=('dense_frame_inds', )),
    # Flow of the original frames (so a cache can serve it); crop and resize
    # then carry it along with the frames.
    dict(type='ComputeFlow', backend=dict(type='FarnebackFlow'),
         cache_dir=flow_cache_dir, data_root=data_root),
    dict(type='MotionMultiScaleCrop', input_size=224,
         scales=(1, .875, .75, .66), random_crop=False, max_wh_scale_gap=1,
         num_fixed_crops=13),
    dict(type='MotionResize', scale=(224, 224), keep_ratio=False),
    dict(type='ComputeTrajectories', grid_step=8),
    # Reject occluded / mistracked points (photometric check) and tubes
    # across shot cuts (docs/mme_design.md). The forward-backward check
    # needs backward flow, which doubles release-setting Farneback's cost:
    # enable it with ComputeFlow(backward=True) and fb_check=True
    # (measured cost in docs/benchmarks.md).
    dict(type='CheckTrajectoryReliability', fb_check=False),
    # HOG along the trajectories is computed by the model on the GPU
    # (model.hog_target, as the release does); a worker only keeps the
    # frames and points. ComputeHOG here instead does it on the CPU at
    # ~300 ms per clip (docs/benchmarks.md).
    dict(type='PrepareHOGInputs', mode='trajectory'),
    dict(type='BuildMMETargets', patch_size=16, norm='patch_std'),
    dict(type='TubeMasking', mask_ratio=0.7, patch_size=16, tubelet_size=2),
    dict(type='FormatShape', input_format='NCTHW'),
    # packs every MME key the pipeline added (MME_ALGORITHM_KEYS)
    dict(type='PackMMEInputs')
]

# The pipeline builds the targets: no target generator in the model; HOG
# along the trajectories is still computed by the model (PrepareHOGInputs).
model = dict(target_generator=None, targets=dict(hog=dict(source='auto')))

train_dataloader = dict(
    dataset=dict(ann_file=ann_file, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline))
