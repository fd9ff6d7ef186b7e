# The pixel-target (VideoMAE) baseline with everything else as in
# pretrain_tiny_synthetic.py: same encoder, decoder, mask ratio, crops and
# schedule; the decoder predicts normalised pixels of each masked tube.
_base_ = ['./pretrain_tiny_synthetic.py']

model = dict(
    # 2 frames x 8 x 8 pixels x 3 channels per token (derived)
    targets=dict(_delete_=True,
                 pixel=dict(type='PixelTarget', normalize=True)))

# Pixel targets need no flow, trajectories or HOG.
train_pipeline = [
    dict(type='VideoInit'),
    dict(type='SampleFrames', clip_len={{_base_.clip_len}},
         frame_interval={{_base_.frame_interval}}, num_clips=1),
    dict(type='VideoDecode'),
    dict(type='MultiScaleCrop', input_size={{_base_.img_size}},
         scales=(1, .875, .75, .66), random_crop=False, max_wh_scale_gap=1,
         num_fixed_crops=13),
    dict(type='Resize', scale=({{_base_.img_size}}, {{_base_.img_size}}),
         keep_ratio=False),
    dict(type='TubeMasking', mask_ratio=0.75,
         patch_size={{_base_.patch_size}}, tubelet_size=2),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs', algorithm_keys=('mask', ),
         meta_keys=('img_shape', 'filename'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
