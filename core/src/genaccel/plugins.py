"""The plugin manager: built-in plugins plus everything in the ``genaccel`` entry-point group.

Loading plugins imports only their registration modules (no torch, transformers or model code).
"""

from __future__ import annotations

import functools
from importlib import metadata

import pluggy

from . import hookspecs
from .registry import Command, Registry


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    from .builtin.registration import BUILTIN_PLUGINS

    pm = pluggy.PluginManager("genaccel")
    pm.add_hookspecs(hookspecs)
    for name, plugin in BUILTIN_PLUGINS.items():
        pm.register(plugin, name=name)
    if load_entry_points:
        pm.load_setuptools_entrypoints("genaccel")
    return pm


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every plugin's register hooks, recording which plugin registered what."""
    registry = Registry()
    for hook in (
        pm.hook.genaccel_register_workloads,
        pm.hook.genaccel_register_decoders,
        pm.hook.genaccel_register_optimizations,
    ):
        for impl in hook.get_hookimpls():
            impl.function(register=functools.partial(registry.add, plugin=impl.plugin_name))
    for impl in pm.hook.genaccel_register_commands.get_hookimpls():
        def register(name, help, add_arguments, run, _plugin=impl.plugin_name):
            registry.add(Command(name=name, help=help, add_arguments=add_arguments, run=run), plugin=_plugin)

        impl.function(register=register)
    return registry


@functools.cache
def default_registry() -> Registry:
    return build_registry(make_plugin_manager())


def plugin_versions(pm: pluggy.PluginManager | None = None) -> dict[str, str]:
    """Installed genaccel distributions and their versions (for report environments)."""
    pm = pm or make_plugin_manager()
    versions = {"genaccel": metadata.version("genaccel")}
    for _plugin, dist in pm.list_plugin_distinfo():
        versions[dist.project_name] = dist.version
    return versions
