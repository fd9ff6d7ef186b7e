# UCF101 videos for recognition, split 1 (other splits: set `split`;
# tools/data/build_lists.py ucf101 writes all three): as k400.py, with the
# release's 10 clips x 3 crops test (docs/release_spec.md 5.2).
_base_ = ['./k400.py']

num_classes = 101
split = 1
data_root = 'data/ucf101/videos'
ann_file_train = f'data/ucf101/ucf101_train_split_{split}_videos.txt'
ann_file_val = f'data/ucf101/ucf101_val_split_{split}_videos.txt'
test_clips = 10  # release 10x3; finetune_ucf101_test5x3.py: mmaction's 5x3

mixup_cutmix = dict(augments=[
    dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
    dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
])
# the loaders of k400.py with these lists, root, test views and classes
dataset_fields = dict(data_prefix=dict(video=data_root),
                      num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(dataset_fields, ann_file=ann_file_train))
val_dataloader = dict(dataset=dict(dataset_fields, ann_file=ann_file_val))
# k400.py's test pipeline with the release's clip count
test_dataloader = dict(dataset=dict(
    dataset_fields, ann_file=ann_file_val,
    pipeline_edits=dict(SampleFrames=dict(num_clips=test_clips))))
