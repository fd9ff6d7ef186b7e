"""Registration of every plugin module and the default scope."""
import datetime
import warnings

from mmengine import DefaultScope

__all__ = ['register_all_modules']


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every module of mmaction and of this plugin into the registries.

    Args:
        init_default_scope (bool): Whether to set the default scope to
            ``mme_plugin`` so that unprefixed names resolve through this
            plugin's registries (which fall back to mmaction and mmengine).
            Defaults to True.
    """
    from mmaction.utils import register_all_modules as mmaction_register
    mmaction_register(init_default_scope=False)

    import mme_plugin.datasets  # noqa: F401
    import mme_plugin.engine  # noqa: F401
    import mme_plugin.evaluation  # noqa: F401
    import mme_plugin.models  # noqa: F401

    if not init_default_scope:
        return
    never_created = (DefaultScope.get_current_instance() is None
                     or not DefaultScope.check_instance_created('mme_plugin'))
    if never_created:
        DefaultScope.get_instance('mme_plugin', scope_name='mme_plugin')
        return
    current_scope = DefaultScope.get_current_instance()
    if current_scope.scope_name != 'mme_plugin':
        warnings.warn('The current default scope '
                      f'"{current_scope.scope_name}" is not "mme_plugin", '
                      '`register_all_modules` will force the current default '
                      'scope to be "mme_plugin". If this is not expected, '
                      'please set `init_default_scope=False`.')
        new_instance_name = f'mme_plugin-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_instance_name, scope_name='mme_plugin')
