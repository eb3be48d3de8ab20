"""Roles: the mechanism of the workload contract.  A role (:class:`Role`) lists the members the core
calls: its methods, written as stubs whose signatures say how they are called, and its attributes
(:class:`Member`), whose value may itself have to play a protocol role (``model =
Member(plays=StepProtocol)``).  :func:`check_roles` verifies a built instance against the roles its
spec declares; a missing member, an attribute that is not callable where a method is needed, or a
method that cannot take the role's arguments is a one-line error naming the workload, the role and the
member.  The roles themselves are declared in :mod:`genaccel.plugin.roles`.  Light: no torch.
"""

from __future__ import annotations

import inspect

from ..errors import GenaccelError

_ABSENT = object()


class Member:
    """An attribute a role needs.  ``plays``: a protocol (a :class:`Role`) its value must play too."""

    def __init__(self, plays: type[Role] | None = None):
        self.plays = plays


class Role:
    """Base of every role.  ``capability``: the name ``genaccel list`` shows for what it offers."""

    capability: str | None = None
    _methods: dict[str, inspect.Signature] = {}
    _attributes: dict[str, Member] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        methods, attributes = {}, {}
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, Role):
                methods.update(base._methods)
                attributes.update(base._attributes)
        for name, value in vars(cls).items():
            if name.startswith("_") or name == "capability":
                continue
            if isinstance(value, Member):
                attributes[name] = value
            elif inspect.isfunction(value):
                methods[name] = inspect.signature(value)
        cls._methods, cls._attributes = methods, attributes

    @classmethod
    def members(cls) -> tuple[str, ...]:
        return (*cls._attributes, *cls._methods)

    @classmethod
    def problems(cls, instance, prefix: str = "") -> list[str]:
        """What ``instance`` lacks or gets wrong of this role's members (empty: it plays the role)."""
        found = []
        for name, member in cls._attributes.items():
            if inspect.getattr_static(instance, name, _ABSENT) is _ABSENT:
                found.append(f"lacks {prefix}{name}")
            elif member.plays is not None:
                found += member.plays.problems(getattr(instance, name), prefix=f"{prefix}{name}.")
        for name, signature in cls._methods.items():
            if inspect.getattr_static(instance, name, _ABSENT) is _ABSENT:
                found.append(f"lacks {prefix}{name}")
                continue
            method = getattr(instance, name)
            if not callable(method):
                found.append(f"has {prefix}{name}, which is not callable")
            elif not _takes(method, signature):
                found.append(f"has {prefix}{name}{_shown(method)}, which cannot be called as {name}{_stub(signature)}")
        return found


def _stub(signature: inspect.Signature) -> str:
    return str(signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "self"]))


def _shown(method) -> str:
    try:
        return str(inspect.signature(method))
    except (TypeError, ValueError):
        return "(...)"


def _takes(method, signature: inspect.Signature) -> bool:
    """Whether ``method`` accepts every argument the role's stub names, passed as the stub passes them."""
    try:
        own = inspect.signature(method)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return True
    args, kwargs, variadic = [], {}, False
    for p in list(signature.parameters.values())[1:]:  # after self
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            args.append(None)
        elif p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = None
        else:  # the stub's *args or **kwargs: the member may require more of its own
            variadic = True
    try:
        (own.bind_partial if variadic else own.bind)(*args, **kwargs)
    except TypeError:
        return False
    return True


def offers(declared, required: type[Role]) -> bool:
    """Whether roles ``declared`` offer ``required`` (it or a role derived from it)."""
    return any(issubclass(role, required) for role in declared)


def capabilities_of(roles) -> tuple[str, ...]:
    """The capability names of ``roles`` and of the roles they derive from, sorted."""
    return tuple(sorted({base.capability for role in roles for base in role.__mro__
                         if isinstance(base, type) and issubclass(base, Role) and base.capability}))


def check_roles(workload_name: str, roles, instance) -> None:
    """Every member of every role in ``roles`` is on the built instance, callable as the role says."""
    if isinstance(instance, Role):
        raise GenaccelError(f"workload {workload_name}'s instance ({type(instance).__name__}) inherits role classes; "
                            "a workload declares its roles in its WorkloadSpec only")
    for role in dict.fromkeys(roles):
        problems = role.problems(instance)
        if problems:
            raise GenaccelError(f"workload {workload_name} declares role {role.__name__} but its instance "
                                f"({type(instance).__name__}) {'; '.join(problems)}")
