# Kinetics-400 videos for recognition (fine-tuning, linear probing, testing):
# mmaction's video lists (`path label` lines), 16 frames x stride 4, the
# release's fine-tune augmentation (RandAugment, random resized crop, flip,
# random erasing; docs/release_spec.md 5.2) and its 7 clips x 3 crops test.
# The recipe (finetune / linear probe) adds its batch size and, for
# fine-tuning, repeated augmentation and mixup/cutmix (`mixup_cutmix`).
dataset_type = 'CheckedVideoDataset'
num_classes = 400
data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'
ann_file_test = ann_file_val
clip_len, frame_interval = 16, 4
test_clips = 7  # release 7x3; finetune_k400_test5x3.py: mmaction's 5x3

train_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=clip_len,
         frame_interval=frame_interval, num_clips=1),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='VideoRandAugment', magnitude=7, num_ops=4,
         magnitude_std=0.5),
    dict(type='RandomResizedCrop', area_range=(0.25, 1.0),
         aspect_ratio_range=(3 / 4, 4 / 3)),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=clip_len,
         frame_interval=frame_interval, num_clips=1, test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=clip_len,
         frame_interval=frame_interval, num_clips=test_clips,
         test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

# Batch augmentation of the fine-tune recipe; it needs the class count.
mixup_cutmix = dict(
    type='RandomBatchAugment',
    augments=[
        dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
        dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
    ])

train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,  # labels checked against it at start-up
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline,
        test_mode=True))
# the validation loader, one video per batch, multi-view pipeline
test_dataloader = dict(
    val_dataloader,
    batch_size=1,
    dataset=dict(val_dataloader['dataset'], ann_file=ann_file_test,
                 pipeline=test_pipeline))
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
