# Fine-tune recipe of the release for a pretrained ViT-B/16 with the stock
# recognizer (docs/release_spec.md 5.2): model, AdamW with layer-wise lr decay,
# warmup + cosine, checkpoints every 5 epochs. A config under configs/mme/
# adds a dataset (`_base_/datasets/`), its class count, mixup / cutmix and
# repeated augmentation.
_base_ = [
    './default_runtime.py', './models/vit-base-p16_finetune.py',
    './schedules/finetune_adamw_layerdecay.py'
]

default_hooks = dict(
    checkpoint=dict(interval=5, max_keep_ckpts=3, save_best='auto'),
    logger=dict(interval=100))

# Repeated augmentation x2 (release num_sample=2): each loaded clip gives 2
# differently augmented samples. A fine-tune config applies it to its
# dataset's train loader:
#   train_dataloader = {{_base_.repeated_augmentation}}
repeated_augmentation = dict(
    collate_fn=dict(type='repeat_pseudo_collate'),
    dataset=dict(type='RepeatAugVideoDataset', num_repeats=2))

# Per-sample seeds from (seed, epoch, index) and per-iteration torch seeds:
# a resumed run reproduces the uninterrupted one (tests/test_resume.py).
# NonFiniteLossHook (also in default_runtime.py; a list here replaces
# the base's): a non-finite loss / checkpoint / score stops the run.
custom_hooks = [dict(type='ReseedHook'), dict(type='NonFiniteLossHook')]
