# MME pretraining on Kinetics-400 with flow computed ON THE FLY and fast:
# DIS "ultrafast" at half resolution on the 224 x 224 crops (after
# crop/resize), instead of release-setting Farneback on the original frames.
# One CPU worker makes ~11-13 clips/s of K400-length videos instead of ~1
# (docs/benchmarks.md; ~14-16.5 with pretrain_k400_dis_rep2.py), so no flow
# cache is needed; the trajectories move by ~0.7 px on average (after
# L = 4 steps) against Farneback's (synthetic sprites; check on your own
# videos with `python benchmarks/data_pipeline.py --agreement VIDEO ...`
# before you switch). Everything else is the recipe of pretrain_k400.py
# (the targets in the data workers, as pretrain_k400_worker.py).
#   tools/dist_train.sh configs/mme/pretrain_k400_dis.py 8
_base_ = ['./pretrain_k400_worker.py']

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
    # Flow of the crops: fewer pixels and no flow resampling; kept at half
    # resolution, where the tracker samples it (full_res=False). (A flow
    # cache holds flows of the original frames, so it cannot be used here.)
    dict(type='ComputeFlow',
         backend=dict(type='DISFlow', preset='ultrafast', scale=0.5),
         full_res=False, backward=True),
    dict(type='ComputeTrajectories', grid_step=8),
    # Reject occluded / mistracked points (forward-backward and photometric
    # checks) and tubes across shot cuts (docs/mme_design.md).
    dict(type='CheckTrajectoryReliability'),
    dict(type='PrepareHOGInputs', mode='trajectory'),
    dict(type='BuildMMETargets', patch_size=16, norm='patch_std'),
    dict(type='TubeMasking', mask_ratio=0.7, patch_size=16, tubelet_size=2),
    dict(type='FormatShape', input_format='NCTHW'),
    # packs every MME key the pipeline added (MME_ALGORITHM_KEYS)
    dict(type='PackMMEInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
