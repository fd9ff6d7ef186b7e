# MME pretraining of a tiny ViT on the built-in synthetic motion dataset
# (tools/data/make_synthetic.py), on CPU. Same algorithm as the recipes,
# scaled down: 64x64 frames, patch 8 (2x2 points of a 4-px grid per patch),
# 8 frames x stride 4 (256 tokens), L = 4 dense steps per tube, HOG on gray
# 4x4 cells. 20 epochs (400 iterations) in the main job's budget. (Patch 16,
# 64 tokens, was tried: pretraining is cheaper, but the supervised baseline
# falls to chance; docs/synthetic_benchmark.md.)
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/synthetic'
# Flows of all consecutive frames of each clip are computed once (on first
# use, 'readwrite') and reused by every epoch, seed and run: flow is two
# thirds of this pipeline's cost on CPU. None = flow on the fly.
flow_cache_dir = f'{data_root}/flow_cache'
embed_dims = 128
img_size, patch_size, grid_step = 64, 8, 4
clip_len, frame_interval, traj_len = 8, 4, 4

model = dict(
    type='MME',
    backbone=dict(
        type='MMEVisionTransformer',
        img_size=img_size,
        patch_size=patch_size,
        embed_dims=embed_dims,
        depth=4,
        num_heads=4,
        mlp_ratio=4,
        qkv_bias=True,
        num_frames=clip_len,
        tubelet_size=2,
        norm_cfg=dict(type='LN', eps=1e-6),
        use_mean_pooling=True),
    decoder=dict(
        type='MMEDecoder',
        embed_dims=64,
        depth=1,
        num_heads=4,
        head_hidden=128),
    # sizes derived: traj 2 x L x 4 points, hog (L + 1) x 4 cells x 9 bins
    targets=dict(
        traj=dict(type='TrajectoryTarget', traj_len=traj_len,
                  grid_step=grid_step),
        hog=dict(type='HOGTarget', traj_len=traj_len, mode='trajectory',
                 cell_size=grid_step, channels='gray')),
    loss=dict(type='MMELoss'),
    data_preprocessor=dict(
        type='MMEDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

train_pipeline = [
    dict(type='VideoInit'),
    dict(type='MMESampleFrames', clip_len=clip_len,
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
    dict(type='BuildMMETargets', patch_size=patch_size, norm='patch_std'),
    dict(type='TubeMasking', mask_ratio=0.75, patch_size=patch_size,
         tubelet_size=2),
    dict(type='FormatShape', input_format='NCTHW'),
    # packs every MME key the pipeline added (MME_ALGORITHM_KEYS)
    dict(type='PackMMEInputs')
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    prefetch_factor=2,
    # one tensor per key and batch (MMEDataPreprocessor copies each once)
    collate_fn=dict(type='mme_collate'),
    # per-sample seeds from (seed, epoch, index): resume-exact
    sampler=dict(type='SeededSampler', shuffle=True),
    dataset=dict(
        type='CheckedVideoDataset',
        ann_file=f'{data_root}/train.txt',
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))

max_epochs = 20
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'mask_token': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True,
         begin=3, end=max_epochs, T_max=max_epochs - 3,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_last=True, save_best=None),
    logger=dict(type='LoggerHook', interval=10))
# Per-iteration torch seeds: a killed run resumes to the same weights.
# NonFiniteLossHook (also in default_runtime.py; a list here replaces
# the base's): a non-finite loss / checkpoint / score stops the run.
# CollapseMonitorHook: constant share, participation ratio and per-block
# singular value ratios of the encoder on 16 fixed train clips, every 100
# iterations (a forward of 16 clips: cheap); flags an input-independent
# encoder (docs/synthetic_benchmark.md, "Collapse monitor").
custom_hooks = [dict(type='ReseedHook'), dict(type='NonFiniteLossHook'),
                dict(type='CollapseMonitorHook', interval=100)]
