# Ablation of pretrain_tiny_synthetic.py: trajectory targets WITHOUT the
# release's PatchStd, i.e. absolute per-step displacements / 2 px. PatchStd
# removes a patch's common translation, so rigid motion (translation) leaves
# no trajectory target; this variant keeps it (docs/synthetic_benchmark.md).
_base_ = ['./pretrain_tiny_synthetic.py']

train_dataloader = dict(
    dataset=dict(pipeline_edits=dict(
        BuildMMETargets=dict(norm='none', traj_scale=2.0))))
