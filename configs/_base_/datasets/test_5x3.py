# mmaction's standard multi-view test: 5 clips x 3 crops of 16 frames at
# stride 4, shorter side 224. The *_test5x3.py configs use it as their test
# pipeline (the recipes keep the release's views).
test_5x3_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=5,
         test_mode=True),
    dict(type='VideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
