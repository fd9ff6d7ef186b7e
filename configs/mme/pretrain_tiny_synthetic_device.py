# The tiny synthetic MME pretraining (pretrain_tiny_synthetic.py) with the
# motion targets computed by the model (the device placement of
# pretrain_k400.py, docs/mme_design.md): the workers only decode, crop and
# resize; the model's MotionTargetGenerator computes the Farneback flow
# (PyTorch), the trajectories, the forward-backward / photometric / shot-cut
# checks and the targets, and its hog target the HOG along the tracked
# points. On a CPU the worker placement is faster (docs/benchmarks.md), so
# the built-in benchmark keeps pretrain_tiny_synthetic.py; this config is
# the small, quick check of the device placement.
#   python tools/train.py configs/mme/pretrain_tiny_synthetic_device.py
_base_ = ['./pretrain_tiny_synthetic.py']

img_size, patch_size = 64, 8
clip_len, frame_interval, traj_len = 8, 4, 4

model = dict(
    # the same checks as the base's CheckTrajectoryReliability (all on)
    target_generator=dict(type='MotionTargetGenerator',
                          reliability=dict(fb_check=True),
                          targets=dict(norm='patch_std')),
    targets=dict(hog=dict(source='device')))

train_pipeline = [
    dict(type='VideoInit'),
    dict(type='MMESampleFrames', clip_len=clip_len,
         frame_interval=frame_interval, tubelet_size=2, traj_len=traj_len),
    dict(type='VideoDecode', extra_keys=('dense_frame_inds', )),
    dict(type='MotionMultiScaleCrop', input_size=img_size,
         scales=(1, .875, .75, .66), random_crop=False, max_wh_scale_gap=1,
         num_fixed_crops=13),
    dict(type='MotionResize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='PrepareMotionInputs'),
    dict(type='TubeMasking', mask_ratio=0.75, patch_size=patch_size,
         tubelet_size=2),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackMMEInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
