# Fine-tune an MME-pretrained ViT-B/16 on Kinetics-400 with the stock
# recognizer (release: base lr 1e-3, 75 epochs, 16x4, test 7 clips x 3
# crops; release spec 5.2). Expected: 81.8 top-1 after 1600-epoch pretraining.
#   python tools/convert/mme_to_recognizer.py PRETRAIN.pth backbone.pth \
#       --config configs/mme/finetune_k400.py
#   tools/dist_train.sh configs/mme/finetune_k400.py 8 \
#       --cfg-options load_from=backbone.pth
#   tools/dist_test.sh configs/mme/finetune_k400.py \
#       work_dirs/finetune_k400/epoch_75.pth 8
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/vit-base-p16_finetune.py',
    '../_base_/schedules/finetune_adamw_layerdecay.py'
]

num_classes = 400
model = dict(
    cls_head=dict(num_classes=num_classes),
    data_preprocessor=dict(
        blending=dict(augments=[
            dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
            dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
        ])))

dataset_type = 'CheckedVideoDataset'
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

# Repeated augmentation x2 (release num_sample=2): each loaded clip gives 2
# differently augmented samples.
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='repeat_pseudo_collate'),
    dataset=dict(
        type='RepeatAugVideoDataset',
        num_repeats=2,
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
test_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        num_classes=num_classes,
        ann_file=ann_file_test,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline,
        test_mode=True))
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

default_hooks = dict(
    checkpoint=dict(interval=5, max_keep_ckpts=3, save_best='auto'),
    logger=dict(interval=100))

# Per-sample seeds from (seed, epoch, index) and per-iteration torch seeds:
# a resumed run reproduces the uninterrupted one (tests/test_resume.py).
custom_hooks = [dict(type='ReseedHook')]
