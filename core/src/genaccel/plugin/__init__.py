"""Contracts and registration: hook specs, roles, specs and options, the registry, the plugin manager
and the built-in registrations.  Imports only ``errors`` and ``files``; never torch."""
