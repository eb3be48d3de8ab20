"""One native GEMV call for the few-row products that read the same input: a compiled graph's
``genaccel_cpu.gemv`` (``gemv_int8``, ``gemv_int4``) calls on one input node become one ``gemv_many``
(``gemv_int8_many``, ``gemv_int4_many``) call whose output holds theirs side by side, each read as a
slice (a view): an Inductor post-grad pass.  int4 calls are grouped where their group sizes agree.

A decoder layer's query, key and value projections read the same normed hidden state, and so do
its MLP's gate and up projections: 7 calls a Llama layer become 4.  The grouped call converts or
quantizes the input once and streams all its weights in one parallel region (each thread takes its
share of their rows, one weight after another); each output row is computed exactly as alone, so the
results are bitwise those of the separate calls.  Measured on 2 Zen 3 cores: over the small preset's
decode weights in model order (cold, huge pages; processes taken in turn, two pairs) the grouped shapes
took 0.87-0.88x the time of the separate ones in int8 and 0.89x in bf16 (a call's fixed cost: the
threads' start and join, the input's conversion, a stream's ramp).  In whole compiled decode steps
(grouped and separate models alternated in one process, 8 rounds of 128 steps, median ratio) the
small preset's bf16 step took 0.94x, int8 (bf16 cache) 0.98x in both build orders, float32 1.00x; the
1b preset's bf16 step 1.09x and 0.96x in two runs, within that machine's swings.

The weights are passed as a list (graph inputs: parameters are not frozen), so nothing is copied; the
output is one tensor (a list return would make Inductor's C++ wrapper call the op through Python).
The pass has a ``uuid`` (this file's hash) so that Inductor's caches key on it.
"""

from __future__ import annotations

import torch
from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files

#: a single call's op name → (its argument names, the grouped op's name, the arguments its calls share); the
#: grouped op takes the input, then one list per other argument but the shared ones, which it takes once
GROUPED = {"gemv": (("x", "w", "scale", "bias"), "gemv_many", ()),
           "gemv_int8": (("x", "packed", "scale", "bias"), "gemv_int8_many", ()),
           "gemv_int4": (("x", "packed", "scale_zero", "group", "bias"), "gemv_int4_many", ("group",))}


class GroupGemvs(CustomGraphPass):
    """Merges the ``genaccel_cpu`` GEMV calls of a post-grad FX graph that share their input (and,
    for ``gemv``, their weights' dtype) into one grouped call."""

    def __call__(self, graph: torch.fx.Graph) -> None:
        groups: dict[tuple, list[torch.fx.Node]] = {}
        for node in graph.nodes:
            name = _op_name(node)
            if name is None:
                continue
            names, _, shared = GROUPED[name]
            args = _arguments(node, names)
            weight = args[1].meta.get("val") if isinstance(args[1], torch.fx.Node) else None
            key = (name, args[0], getattr(weight, "dtype", None), *(args[names.index(a)] for a in shared))
            groups.setdefault(key, []).append(node)
        for (name, *_), nodes in groups.items():
            if (len(nodes) < 2 or not all(isinstance(n.meta["val"].shape[-1], int) for n in nodes)
                    or any(a in nodes for n in nodes for a in n.all_input_nodes)):
                continue  # alone, a symbolic number of output rows, or one call's output another's argument
            order = {node: i for i, node in enumerate(graph.nodes)}  # as earlier merges left it
            # the grouped call goes right after the last of its inputs, which must come before every use of
            # the calls it replaces; failing that, the calls whose inputs all come before the first of them
            last = max((a for n in nodes for a in n.all_input_nodes), key=order.__getitem__)
            if all(order[last] < order[u] for n in nodes for u in n.users):
                _merge(graph, name, nodes, after=last)
                continue
            nodes = [n for n in nodes if all(order[a] < order[nodes[0]] for a in n.all_input_nodes)]
            if len(nodes) > 1:
                _merge(graph, name, nodes, after=nodes[0].prev)
        graph.lint()

    def uuid(self):
        return get_hash_for_files((__file__,))


def _op_name(node: torch.fx.Node) -> str | None:
    """The name of a single GEMV call's op, or None for any other node."""
    if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
        return None
    ns, name = node.target.namespace, node.target._schema.name.split("::")[-1]
    return name if ns == "genaccel_cpu" and name in GROUPED else None


def _arguments(node: torch.fx.Node, names: tuple[str, ...]) -> list:
    """The call's arguments by position, keyword or default (None)."""
    return _arguments_of((node.args, node.kwargs), names)


def _arguments_of(call: tuple, names: tuple[str, ...]) -> list:
    """``(args, kwargs)`` by position, keyword or default (None)."""
    args, kwargs = call
    args = list(args) + [None] * (len(names) - len(args))
    return [kwargs.get(n, a) for n, a in zip(names, args)]


def _grouped(name: str, calls: list[list]) -> tuple:
    """The grouped op's arguments from its calls' (the same input first): the input, then a list per other
    argument, or the calls' common value of a shared one."""
    names, _, shared = GROUPED[name]
    return (calls[0][0], *(calls[0][i] if names[i] in shared else [c[i] for c in calls] for i in range(1, len(names))))


def _merge(graph: torch.fx.Graph, name: str, nodes: list[torch.fx.Node], after: torch.fx.Node) -> None:
    """``nodes`` (single calls of op ``name``) as one grouped call and its items, placed after ``after``."""
    names, grouped, _ = GROUPED[name]
    op = getattr(torch.ops.genaccel_cpu, grouped).default
    with graph.inserting_before(after.next):
        call = graph.call_function(op, _grouped(name, [_arguments(n, names) for n in nodes]))
        call.meta["val"] = torch.cat([n.meta["val"] for n in nodes], -1)
        if all("eager_input_vals" in n.meta for n in nodes):  # Inductor gives the input the strides it had
            call.meta["eager_input_vals"] = (_grouped(name, [_arguments_of(n.meta["eager_input_vals"], names) for n in nodes]), {})
        items, start = [], 0
        for node in nodes:
            end = start + node.meta["val"].shape[-1]
            items.append(graph.call_function(torch.ops.aten.slice.Tensor, (call, -1, start, end)))
            items[-1].meta["val"] = call.meta["val"][..., start:end]
            start = end
    for item, node in zip(items, nodes):
        node.replace_all_uses_with(item)
        graph.erase_node(node)
