# Fine-tune an MME-pretrained (K400) ViT-B/16 on UCF101, split 1 (release:
# base lr 1e-3, 100 epochs, gradient accumulation 4, 16x4, test 10 clips x 3
# crops; docs/release_spec.md 5.2). Expected: 96.5 top-1. Other splits: set
# split=2|3 lists (tools/data/build_lists.py ucf101 writes all three).
_base_ = ['./finetune_k400.py']

num_classes = 101
split = 1
model = dict(
    cls_head=dict(num_classes=num_classes),
    data_preprocessor=dict(
        blending=dict(augments=[
            dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
            dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
        ])))

data_root = 'data/ucf101/videos'
ann_file_train = f'data/ucf101/ucf101_train_split_{split}_videos.txt'
ann_file_val = f'data/ucf101/ucf101_val_split_{split}_videos.txt'
test_clips = 10  # release 10x3; finetune_ucf101_test5x3.py: mmaction's 5x3

test_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=16, frame_interval=4,
         num_clips=test_clips, test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root),
                 num_classes=num_classes))
val_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root),
                 num_classes=num_classes))
test_dataloader = dict(
    dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root),
                 pipeline=test_pipeline, num_classes=num_classes))

max_epochs = 100
# update_freq 4 of the release: accumulate 4 iterations per step.
optim_wrapper = dict(accumulative_counts=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, eta_min=1e-6,
         by_epoch=True, begin=5, end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
# The lr scales with the optimizer-step batch (x4 accumulation x2 repeats).
auto_scale_lr = dict(base_batch_size=256 // 2 // 4)
