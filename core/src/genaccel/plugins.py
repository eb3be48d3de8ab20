"""The plugin manager: built-in plugins plus everything in the ``genaccel`` entry-point group."""

from __future__ import annotations

import functools
from importlib import metadata

import pluggy

from . import hookspecs
from .registry import Registry

BUILTIN_PLUGINS = ("genaccel.builtin.decoders", "genaccel.builtin.optimizations", "genaccel.builtin.quantization",
                   "genaccel.builtin.diffusion")


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("genaccel")
    pm.add_hookspecs(hookspecs)
    for modname in BUILTIN_PLUGINS:
        module = __import__(modname, fromlist=["_"])
        pm.register(module, name=modname)
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
