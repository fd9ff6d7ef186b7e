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

# pretrain_k400_worker.py's pipeline with the flow step moved after the
# crop and the forward-backward check on: the steps it shares come from the
# bases (the order is the only thing pipeline_edits cannot change).
train_pipeline = [
    *_base_.sample_steps,
    *_base_.crop_steps,
    # Flow of the crops: fewer pixels and no flow resampling; kept at half
    # resolution, where the tracker samples it (full_res=False). (A flow
    # cache holds flows of the original frames, so it cannot be used here.)
    dict(type='ComputeFlow',
         backend=dict(type='DISFlow', preset='ultrafast', scale=0.5),
         full_res=False, backward=True),
    dict(type='ComputeTrajectories', grid_step={{_base_.grid_step}}),
    # Reject occluded / mistracked points (forward-backward and photometric
    # checks) and tubes across shot cuts (docs/mme_design.md).
    dict(type='CheckTrajectoryReliability'),
    *_base_.target_steps,
    *_base_.mask_steps,
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
