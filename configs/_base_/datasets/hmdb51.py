# HMDB51 videos for recognition, split 1: as ucf101.py (same test views).
_base_ = ['./ucf101.py']

num_classes = 51
split = 1
data_root = 'data/hmdb51/videos'
ann_file_train = f'data/hmdb51/hmdb51_train_split_{split}_videos.txt'
ann_file_val = f'data/hmdb51/hmdb51_val_split_{split}_videos.txt'
mixup_cutmix = dict(augments=[
    dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
    dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes)
])
# the loaders of ucf101.py with these lists, root and classes
dataset_fields = dict(data_prefix=dict(video=data_root),
                      num_classes=num_classes)
train_dataloader = dict(
    dataset=dict(dataset_fields, ann_file=ann_file_train))
val_dataloader = dict(dataset=dict(dataset_fields, ann_file=ann_file_val))
test_dataloader = dict(
    dataset=dict(dataset_fields, ann_file=ann_file_val))
