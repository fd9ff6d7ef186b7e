"""The plugin's registries resolve plugin, mmaction and mmengine names."""
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mme_plugin.registry as reg
from mme_plugin.utils import register_all_modules


def test_every_mmaction_node_has_a_child():
    from mmaction import registry as mreg
    from mmengine.registry import Registry
    names = [n for n in dir(mreg) if isinstance(getattr(mreg, n), Registry)
             and not n.startswith('MMENGINE_')]
    assert len(names) >= 20
    for name in names:
        child = getattr(reg, name)
        assert child.scope == 'mme_plugin'
        assert child.parent is getattr(mreg, name)


def test_plugin_scope_resolves_all_packages():
    register_all_modules(init_default_scope=True)
    assert reg.TRANSFORMS.get('VideoInit').__module__.startswith('mme_plugin')
    assert reg.MODELS.get('Recognizer3D').__name__ == 'Recognizer3D'
    assert reg.METRICS.get('AccMetric').__name__ == 'AccMetric'
    assert reg.HOOKS.get('CheckpointHook').__name__ == 'CheckpointHook'
    assert reg.VISUALIZERS.get('ActionVisualizer') is not None


def test_mmaction_scope_finds_prefixed_plugin_names():
    from mmaction.registry import TRANSFORMS
    init_default_scope('mmaction')
    cls = TRANSFORMS.get('mme_plugin.VideoInit')
    assert cls is not None and cls.__name__ == 'VideoInit'
    obj = TRANSFORMS.build(dict(type='mme_plugin.VideoDecode'))
    assert type(obj).__name__ == 'VideoDecode'


def test_plugin_config_builds_stock_model():
    register_all_modules()
    cfg = Config.fromfile('configs/recognition/tiny-vit_synthetic.py')
    assert cfg.default_scope == 'mme_plugin'
    model = reg.MODELS.build(cfg.model)
    assert type(model).__name__ == 'Recognizer3D'
    assert type(model.backbone).__name__ == 'VisionTransformer'


def test_no_plugin_transform_shadows_a_stock_name():
    # in the plugin scope an unprefixed mmaction / mmcv name must mean the
    # stock class (the plugin's sampler was once ``DenseSampleFrames``,
    # hiding mmaction's different ``DenseSampleFrames``)
    register_all_modules()
    stock, parent = set(), reg.TRANSFORMS.parent
    while parent is not None:
        stock |= set(parent.module_dict)
        parent = parent.parent
    assert 'DenseSampleFrames' in stock
    assert not set(reg.TRANSFORMS.module_dict) & stock
    assert reg.TRANSFORMS.get('DenseSampleFrames').__module__.startswith(
        'mmaction')
    assert reg.TRANSFORMS.get('MMESampleFrames').__module__.startswith(
        'mme_plugin')


def test_transforms_package_exports_only_transforms():
    # kernels and I/O are imported from mme_plugin.ops / mme_plugin.io
    import mme_plugin.datasets.transforms as transforms
    register_all_modules()
    for name in transforms.__all__:
        obj = getattr(transforms, name)
        assert (name in reg.TRANSFORMS.module_dict
                or isinstance(obj, tuple)
                or (isinstance(obj, type) and issubclass(obj, Exception))), \
            name
