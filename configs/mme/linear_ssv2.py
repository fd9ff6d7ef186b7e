# Linear probe of an MME-pretrained ViT-B/16 on ssv2 (recipe:
# _base_/linear_probe.py; views: the dataset's validation pipeline).
#   tools/dist_train.sh configs/mme/linear_ssv2.py 8 \
#       --cfg-options load_from=backbone.pth
_base_ = ['../_base_/linear_probe.py', '../_base_/datasets/ssv2.py']

model = dict(cls_head=dict(num_classes={{_base_.num_classes}}))
train_dataloader = dict(batch_size=32,
                        dataset=dict(pipeline={{_base_.val_pipeline}}))
