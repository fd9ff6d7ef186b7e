# Something-Something V2 videos for MME pretraining: as k400_mme_pretrain.py
# with VideoMAE's SSv2 sampling, 16 frames x stride 2 (SSv2 clips are ~45
# frames at 12 fps, too short for stride 4). The trajectories cover each
# tube's span at the raw rate, so L = 2 (the release ties L to the stride);
# the recipe's cross term gives the model's targets this traj_len. No flip
# (there is none in K400's either): SSv2 labels depend on direction.
_base_ = ['./k400_mme_pretrain.py']

data_root = 'data/sthv2/videos'
ann_file = 'data/sthv2/sthv2_train_list_videos.txt'
frame_interval, traj_len = 2, 2

# K400's pipeline with this sampling, edited by transform type
# (CheckedVideoDataset(pipeline_edits=...); the dataset logs the edits).
# The edits apply to whatever pipeline a recipe gives this dataset, so a
# variant built from the shared steps (as pretrain_k400_worker.py) keeps
# this sampling.
train_dataloader = dict(
    dataset=dict(
        ann_file=ann_file,
        data_prefix=dict(video=data_root),
        pipeline_edits=dict(
            MMESampleFrames=dict(frame_interval=frame_interval,
                                 traj_len=traj_len))))
