# Test-only variant of finetune_hmdb51.py with mmaction's 5 clips x 3 crops.
#   python tools/test.py configs/mme/finetune_hmdb51_test5x3.py CKPT
_base_ = ['./finetune_hmdb51.py', '../_base_/datasets/test_5x3.py']

test_dataloader = dict(dataset=dict(pipeline={{_base_.test_5x3_pipeline}}))
