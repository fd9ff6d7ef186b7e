# HOG only (MaskFeat-style shape target) with everything else as in
# pretrain_tiny_synthetic.py: the decoder predicts MME's shape target alone,
# the HOG of each masked tube's points along their trajectories (set
# mode='static' here and in the pipeline's ComputeHOG for MaskFeat's HOG of
# one frame). The trajectories are still tracked (the HOG follows them) but
# not predicted.
_base_ = ['./pretrain_tiny_synthetic.py']

model = dict(
    targets=dict(
        _delete_=True,
        hog=dict(type='HOGTarget', traj_len={{_base_.traj_len}},
                 mode='trajectory', cell_size={{_base_.grid_step}},
                 channels='gray')))
