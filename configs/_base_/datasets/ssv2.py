# Something-Something V2 videos for recognition: as k400.py, with the
# release's SSv2 sampling (16 TSN segments, test 2 clips x 3 crops) and NO
# flip (SSv2 labels depend on direction; docs/release_spec.md 5.2).
_base_ = ['./k400.py']

num_classes = 174
data_root = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'

train_pipeline = [
    dict(type='VideoInit'),
    dict(type='UniformSample', clip_len=16, num_clips=1),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='VideoRandAugment', magnitude=7, num_ops=4,
         magnitude_std=0.5),
    dict(type='RandomResizedCrop', area_range=(0.25, 1.0),
         aspect_ratio_range=(3 / 4, 4 / 3)),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    # no Flip: SSv2 labels depend on direction
    dict(type='RandomErasing', erase_prob=0.25, mode='rand'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='VideoInit'),
    dict(type='UniformSample', clip_len=16, num_clips=1, test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='VideoInit'),
    dict(type='UniformSample', clip_len=16, num_clips=2, test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
mixup_cutmix = dict(augments=[
    dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
    dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
])
# the loaders of k400.py with these lists, root, pipelines and classes
dataset_fields = dict(data_prefix=dict(video=data_root),
                      num_classes=num_classes)
train_dataloader = dict(dataset=dict(
    dataset_fields, ann_file=ann_file_train, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    dataset_fields, ann_file=ann_file_val, pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(
    dataset_fields, ann_file=ann_file_val, pipeline=test_pipeline))
