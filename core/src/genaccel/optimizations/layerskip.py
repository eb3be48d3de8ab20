"""``layerskip``: self-speculative decoding in place of the run's greedy or top-p decoder."""

from __future__ import annotations

from ..decoders.speculative import SelfSpeculative
from ..decoders.tokens import Greedy, TopP
from ..errors import GenaccelError


def layerskip(ctx):
    current = ctx.decoder
    if isinstance(current, SelfSpeculative):
        decoder = current
    elif isinstance(current, TopP):
        decoder = SelfSpeculative(sampling=True, temperature=current.temperature, top_p=current.top_p)
    elif isinstance(current, Greedy):
        decoder = SelfSpeculative()
    else:
        raise GenaccelError(
            f"layerskip replaces greedy or top-p decoding, not decoder {ctx.config.decoder!r}; "
            "drop --decoder or use --decoder greedy|top-p"
        )
    ctx.decoder = decoder
    e, k = decoder.settings(ctx)
    mode = "top-p with rejection sampling" if decoder.sampling else "greedy, exact"
    n = ctx.instance.model.num_layers
    return f"self-speculative decoding ({mode}): draft {k} tokens with layers [0, {e}), verify with [{e}, {n})"
