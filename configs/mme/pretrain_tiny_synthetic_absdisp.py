# Ablation of pretrain_tiny_synthetic.py: trajectory targets WITHOUT the
# release's PatchStd, i.e. absolute per-step displacements / 2 px. PatchStd
# removes a patch's common translation, so rigid motion (translation) leaves
# no trajectory target; this variant keeps it (docs/synthetic_benchmark.md).
_base_ = ['./pretrain_tiny_synthetic.py']

data_root = 'data/synthetic'
flow_cache_dir = f'{data_root}/flow_cache'
img_size, patch_size, grid_step = 64, 8, 4
clip_len, frame_interval, traj_len = 8, 4, 4

train_pipeline = [
    dict(type='VideoInit'),
    dict(type='DenseSampleFrames', clip_len=clip_len,
         frame_interval=frame_interval, tubelet_size=2, traj_len=traj_len),
    dict(type='VideoDecode', extra_keys=('dense_frame_inds', )),
    # Flow of the original frames (cacheable); crop/resize carry it along.
    # backward=True: backward flows too, for the forward-backward check.
    dict(type='ComputeFlow', backend=dict(type='FarnebackFlow'),
         cache_dir=flow_cache_dir, cache_mode='readwrite',
         data_root=data_root, backward=True),
    dict(type='MotionMultiScaleCrop', input_size=img_size,
         scales=(1, .875, .75, .66), random_crop=False, max_wh_scale_gap=1,
         num_fixed_crops=13),
    dict(type='MotionResize', scale=(img_size, img_size), keep_ratio=False),
    # No flip: the synthetic classes depend on direction.
    dict(type='ComputeTrajectories', grid_step=grid_step),
    # Reject occluded / mistracked points (forward-backward and photometric
    # checks) and tubes across shot cuts (docs/mme_design.md).
    dict(type='CheckTrajectoryReliability'),
    dict(type='ComputeHOG', mode='trajectory', cell_size=grid_step,
         channels='gray'),
    dict(type='BuildMMETargets', patch_size=patch_size, norm='none',
         traj_scale=2.0),
    dict(type='TubeMasking', mask_ratio=0.75, patch_size=patch_size,
         tubelet_size=2),
    dict(type='FormatShape', input_format='NCTHW'),
    # packs every MME key the pipeline added (MME_ALGORITHM_KEYS)
    dict(type='PackMMEInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
