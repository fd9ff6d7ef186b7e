# The built-in synthetic motion dataset (tools/data/make_synthetic.py) for
# recognition. Classes depend only on motion, so no horizontal flip.
dataset_type = 'CheckedVideoDataset'
data_root = 'data/synthetic'
num_classes = 8

train_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1),
    dict(type='VideoDecode'),
    dict(type='MultiScaleCrop', input_size=64, scales=(1, .875, .75),
         random_crop=False, max_wh_scale_gap=1),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1,
         test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=2,
         test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    # per-sample seeds from (seed, epoch, index): resume-exact
    sampler=dict(type='SeededSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,
        ann_file=f'{data_root}/train.txt',
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,
        ann_file=f'{data_root}/val.txt',
        data_prefix=dict(video=data_root),
        pipeline=val_pipeline,
        test_mode=True))
# the validation loader, one video per batch, multi-view pipeline
test_dataloader = dict(
    val_dataloader,
    batch_size=1,
    dataset=dict(val_dataloader['dataset'], pipeline=test_pipeline))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
