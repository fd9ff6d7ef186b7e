# MME ViT-B/16 as released (release spec 4.1-4.3): tubelet 2, fixed sinusoid
# positions, q/v biases, decoder 1 block x 192 dims x 6 heads, MLP heads.
# The targets declare their sizes (the decoder heads are sized from them):
# traj = 2 coords x L steps x 2x2 points; hog = steps x 2x2 cells x 3
# channels x 9 bins (steps = L + 1 along the trajectory). L = 4 is K400's;
# a recipe sets its dataset's (the cross term of configs/mme/pretrain_*.py).
_base_ = ['./vit-base-p16.py']

model = dict(
    type='MME',
    backbone=dict(type='MMEVisionTransformer', drop_path_rate=0.0,
                  use_mean_pooling=True),
    decoder=dict(
        type='MMEDecoder',
        embed_dims=192,
        depth=1,
        num_heads=6,
        head_hidden=512),
    targets=dict(
        traj=dict(type='TrajectoryTarget', traj_len=4, grid_step=8),
        hog=dict(
            type='HOGTarget',
            traj_len=4,
            mode='trajectory',
            cell_size=8,
            channels='rgb',
            # Used when the pipeline ends with PrepareHOGInputs (HOG on the
            # training device); the same settings as ComputeHOG's defaults.
            device_hog=dict(type='PointHOG', nbins=9, cell_size=8,
                            channels='rgb', norm='l2', eps=0.02))),
    loss=dict(type='MMELoss'),
    # ActionDataPreprocessor for stacked batches (mme_collate): one
    # non-blocking host-to-device copy per key
    data_preprocessor=dict(
        type='MMEDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
