# MME pretraining recipe of the release (docs/release_spec.md 5.1): runtime,
# the MME ViT-B/16, AdamW, the motion targets computed on the training
# device, checkpoints and hooks. A config under configs/mme/ adds a dataset
# base (`_base_/datasets/*_mme_pretrain.py`), the cross term (its targets'
# traj_len = the dataset's) and its epochs (the schedulers state their
# ends: docs/mme_design.md, "How the configs are built").
_base_ = [
    './default_runtime.py', './models/mme_vit-base-p16.py',
    './schedules/mme_pretrain_adamw.py'
]

# Targets on the training device (docs/mme_design.md, "Where the targets are
# computed"): the dataset's pipeline ends the data workers' part with
# PrepareMotionInputs (decoded, cropped and resized dense frames); the
# model's MotionTargetGenerator computes the release's Farneback flow
# (PyTorch, equal to OpenCV's to float rounding; 5 levels, pyramid 0.5,
# window 13, 10 iterations, poly_n 5, sigma 1.1), tracking on the 8 px grid
# of the trajectory target, photometric and shot-cut checks (the
# forward-backward check needs backward flow, twice the flow cost:
# reliability=dict(fb_check=True)), PatchStd targets, for the whole batch
# before the loss; HOG along the tracked points by the hog target's
# PointHOG. No flow cache.
model = dict(
    target_generator=dict(type='MotionTargetGenerator',
                          reliability=dict(fb_check=False),
                          targets=dict(norm='patch_std')),
    targets=dict(hog=dict(source='device')))

# A checkpoint every 50 epochs (kept) plus the latest, for resuming.
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=-1,
                    save_last=True, save_best=None),
    logger=dict(type='LoggerHook', interval=50))

# Per-sample seeds from (seed, epoch, index) and per-iteration torch seeds:
# a resumed run reproduces the uninterrupted one (tests/test_resume.py).
# NonFiniteLossHook (also in default_runtime.py; a list here replaces
# the base's): a non-finite loss / checkpoint / score stops the run.
# CollapseMonitorHook: collapse measures of the encoder on 16 fixed train
# clips every 500 iterations (one no-grad forward, main process only):
# flags an input-independent encoder (docs/synthetic_benchmark.md).
custom_hooks = [dict(type='ReseedHook'), dict(type='NonFiniteLossHook'),
                dict(type='CollapseMonitorHook', interval=500)]
