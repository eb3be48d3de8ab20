"""The plugin manager: built-in plugins plus everything in the ``genaccel`` entry-point group, and
the registry built from their hooks.  Entry points load once per process (:func:`default_registry`).

Loading plugins imports only their registration modules (no torch, transformers or model code).
"""

from __future__ import annotations

import functools
from importlib import metadata

import pluggy

from ..errors import first_line
from ..files import warn
from . import hookspecs
from .builtin import BUILTIN_PLUGINS
from .registry import Registry
from .specs import Command


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("genaccel")
    pm.add_hookspecs(hookspecs)
    for name, plugin in BUILTIN_PLUGINS.items():
        pm.register(plugin, name=name)
    if load_entry_points:
        _load_entry_points(pm)
    return pm


_BROKEN: set[str] = set()


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Every plugin of the ``genaccel`` entry-point group; one that cannot be imported (built for
    another genaccel, a missing dependency) is left out with a warning naming it, not a traceback
    that stops every command."""
    for ep in sorted({ep.name: ep for ep in metadata.entry_points(group="genaccel")}.values(), key=lambda e: e.name):
        try:
            pm.load_setuptools_entrypoints("genaccel", name=ep.name)
        except Exception as e:  # noqa: BLE001 - any failure of a plugin's import
            if pm.get_plugin(ep.name) is not None:
                pm.unregister(name=ep.name)
            dist = f" of {ep.dist.name} {ep.dist.version}" if getattr(ep, "dist", None) else ""
            if ep.name in _BROKEN:
                continue
            _BROKEN.add(ep.name)  # said once per process
            warn(f"plugin {ep.name!r}{dist} ({ep.value}) cannot be loaded and is left out: "
                 f"{type(e).__name__}: {first_line(e)}")


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every plugin's register hooks, recording which plugin registered what and the versions of
    the distributions they came from."""
    registry = Registry(versions=plugin_versions(pm))
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


def plugin_versions(pm: pluggy.PluginManager) -> dict[str, str]:
    """The genaccel distributions whose plugins ``pm`` holds, and their versions."""
    versions = {"genaccel": metadata.version("genaccel")}
    for _plugin, dist in pm.list_plugin_distinfo():
        versions[dist.project_name] = dist.version
    return versions
