# The ViT-B/16 encoder for 16-frame clips (release spec 4.1, docs/
# release_spec.md): 224 px, tubelet 2 (8 x 14 x 14 tokens), q/v biases,
# LayerNorm eps 1e-6. Shared by MME pretraining (mme_vit-base-p16.py) and the
# stock recognizer that fine-tunes it (vit-base-p16_finetune.py), so the
# converted weights always fit.
model = dict(
    backbone=dict(
        img_size=224,
        patch_size=16,
        embed_dims=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4,
        qkv_bias=True,
        num_frames=16,
        tubelet_size=2,
        norm_cfg=dict(type='LN', eps=1e-6)))
