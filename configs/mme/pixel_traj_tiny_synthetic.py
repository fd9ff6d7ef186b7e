# Pixels + trajectories (the TrackMAE-style combination) with everything
# else as in pretrain_tiny_synthetic.py: the decoder predicts each masked
# tube's normalised pixels AND its motion trajectories; the heads are sized
# from the targets. The pipeline is MME's; its HOG is packed but unused
# (drop ComputeHOG and 'hog_*' from PackActionInputs to save its time).
_base_ = ['./pretrain_tiny_synthetic.py']

model = dict(
    targets=dict(
        _delete_=True,
        pixel=dict(type='PixelTarget', normalize=True),
        traj=dict(type='TrajectoryTarget', traj_len={{_base_.traj_len}},
                  grid_step={{_base_.grid_step}})))
