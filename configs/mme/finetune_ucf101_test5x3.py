# Test-only variant of finetune_ucf101.py with mmaction's 5 clips x 3 crops.
#   python tools/test.py configs/mme/finetune_ucf101_test5x3.py CKPT
_base_ = ['./finetune_ucf101.py']

test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=5,
         test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]))
