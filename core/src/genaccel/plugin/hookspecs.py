"""The hook specifications of genaccel: the only place hooks are declared.

A plugin implements any of them with ``@genaccel.hookimpl`` and calls ``register`` once per
thing it provides (a plugin of fixed workload specs may let :func:`workload_hook` write that
function).  Plugins are found through the ``genaccel`` entry-point group.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("genaccel")
hookimpl = pluggy.HookimplMarker("genaccel")


def workload_hook(*specs):
    """The ``genaccel_register_workloads`` implementation of a plugin whose workloads are fixed specs, registered in
    order: ``genaccel_register_workloads = workload_hook(WorkloadSpec(...))`` in its registration module."""

    @hookimpl
    def genaccel_register_workloads(register):
        for spec in specs:
            register(spec)

    return genaccel_register_workloads


@hookspec
def genaccel_register_workloads(register):
    """Register workloads: call ``register(WorkloadSpec(...))`` for each."""


@hookspec
def genaccel_register_decoders(register):
    """Register decoding strategies: call ``register(DecoderSpec(...))`` for each."""


@hookspec
def genaccel_register_optimizations(register):
    """Register optimizations: call ``register(OptimizationSpec(...))`` for each."""


@hookspec
def genaccel_register_commands(register):
    """Register subcommands: call ``register(name, help, add_arguments, run)`` for each, where
    ``add_arguments(parser)`` adds its arguments to an ``argparse`` parser and ``run(args, registry)``
    returns the exit status (``genaccel NAME ...``)."""
