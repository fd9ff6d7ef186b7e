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

# Optional flow cache filled offline by tools/data/extract_trajectories.py
# (None = flow computed on the fly).
flow_cache_dir = None

# The steps after tracking, shared with pretrain_k400_dis.py. HOG along the
# trajectories is computed by the model on the GPU (model.hog_target, as
# the release does); a worker only keeps the frames and points. ComputeHOG
# here instead does it on the CPU at ~300 ms per clip
# (docs/benchmarks.md).
target_steps = [
    dict(type='PrepareHOGInputs', mode='trajectory'),
    dict(type='BuildMMETargets', patch_size={{_base_.patch_size}},
         norm='patch_std'),
]

# The dataset base's steps (_base_/datasets/k400_mme_pretrain.py) with the
# flow and targets in between instead of PrepareMotionInputs.
train_pipeline = [
    *_base_.sample_steps,
    # Flow of the original frames (so a cache can serve it); crop and resize
    # then carry it along with the frames.
    dict(type='ComputeFlow', backend=dict(type='FarnebackFlow'),
         cache_dir=flow_cache_dir, data_root={{_base_.data_root}}),
    *_base_.crop_steps,
    dict(type='ComputeTrajectories', grid_step={{_base_.grid_step}}),
    # Reject occluded / mistracked points (photometric check) and tubes
    # across shot cuts (docs/mme_design.md). The forward-backward check
    # needs backward flow, which doubles release-setting Farneback's cost:
    # enable it with ComputeFlow(backward=True) and fb_check=True
    # (measured cost in docs/benchmarks.md).
    dict(type='CheckTrajectoryReliability', fb_check=False),
    *target_steps,
    *_base_.mask_steps,
]

# The pipeline builds the targets: no target generator in the model; HOG
# along the trajectories is still computed by the model (PrepareHOGInputs).
model = dict(target_generator=None, targets=dict(hog=dict(source='auto')))

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
