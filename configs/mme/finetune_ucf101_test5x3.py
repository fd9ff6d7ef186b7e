# Test-only variant of finetune_ucf101.py with mmaction's 5 clips x 3 crops.
#   python tools/test.py configs/mme/finetune_ucf101_test5x3.py CKPT
# mmaction's standard multi-view test: 5 clips x 3 crops of 16 frames at
# stride 4, shorter side 224 (the recipe keeps the release's views).
_base_ = ['./finetune_ucf101.py']

test_dataloader = dict(
    dataset=dict(pipeline_edits=dict(SampleFrames=dict(num_clips=5))))
