# Fine-tune an MME-pretrained ViT-B/16 on Kinetics-400 with the stock
# recognizer (release: base lr 1e-3, 75 epochs, 16x4, test 7 clips x 3
# crops; release spec 5.2). Expected: 81.8 top-1 after 1600-epoch pretraining.
#   python tools/convert/mme_to_recognizer.py PRETRAIN.pth backbone.pth \
#       --config configs/mme/finetune_k400.py
#   tools/dist_train.sh configs/mme/finetune_k400.py 8 \
#       --cfg-options load_from=backbone.pth
#   tools/dist_test.sh configs/mme/finetune_k400.py \
#       work_dirs/finetune_k400/epoch_75.pth 8
_base_ = ['../_base_/finetune.py', '../_base_/datasets/k400.py']

model = dict(cls_head=dict(num_classes={{_base_.num_classes}}),
             data_preprocessor=dict(blending={{_base_.mixup_cutmix}}))
# repeated augmentation x2 (release num_sample=2), _base_/finetune.py
train_dataloader = {{_base_.repeated_augmentation}}
