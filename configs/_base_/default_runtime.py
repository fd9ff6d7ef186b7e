# Runtime shared by every config of the plugin. Unprefixed names resolve
# through the mme_plugin registries, which fall back to mmaction and mmengine.
default_scope = 'mme_plugin'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, save_best='auto',
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'),
    # training datasets replace bad clips (mme_plugin/datasets/
    # skip_bad_samples.py); this hook logs each epoch's skips over all
    # workers and ranks and stops past the limit
    skipped_samples=dict(type='SkippedSamplesHook'))
# A non-finite loss stops training (naming the iteration and the last good
# checkpoint), non-finite weights are never saved and non-finite scores never
# give a metric (mme_plugin/engine/nonfinite_hook.py). A config that sets its
# own custom_hooks list must include it again.
custom_hooks = [dict(type='NonFiniteLossHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on GPUs; mme_plugin.compat switches to gloo when CUDA is absent.
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
