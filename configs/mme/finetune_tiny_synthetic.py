# Fine-tune the tiny MME-pretrained encoder on the synthetic motion dataset
# with the stock recognizer. The pretrained weights come in through
# `load_from` (a backbone checkpoint written by
# tools/convert/mme_to_recognizer.py):
#   python tools/train.py configs/mme/finetune_tiny_synthetic.py \
#       --cfg-options load_from=work_dirs/.../backbone.pth
_base_ = ['../recognition/tiny-vit_synthetic.py']
