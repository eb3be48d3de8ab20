"""Self-speculative decoding's steps (LayerSkip): draft through the early layers, verify with
the rest, crop rejected positions.  See :mod:`genaccel.speculative` for the loop.

:class:`SelfSpeculation` is mixed into :class:`genaccel.causal_lm.HFCausalLM`; it uses the
host's ``embed_tokens``, ``head``, ``num_layers``, ``cache``, ``forward_span``, ``_step_key`` and
``span_steps`` (a :class:`genaccel.executor.StepExecutor` configured like the decode step's,
without guard skipping: each ``exit_layer`` has its own draft and verify steps).
"""

from __future__ import annotations

import torch


class SelfSpeculation:
    def _draft(self, tokens: torch.Tensor, pos: torch.Tensor, exit_layer: int):
        hidden = self.forward_span(self.embed_tokens(tokens[:, None]), 0, exit_layer, pos)
        return hidden, self.head(hidden[:, -1])

    def _verify(self, last: torch.Tensor, hidden: torch.Tensor, pos: torch.Tensor, exit_layer: int):
        k = hidden.shape[1]
        tail = self.forward_span(self.embed_tokens(last[:, None]), 0, exit_layer, pos + k)
        out = self.forward_span(torch.cat([hidden, tail], dim=1), exit_layer, self.num_layers, pos)
        return self.head(out)

    @torch.no_grad()
    def draft(self, tokens: torch.Tensor, pos: torch.Tensor, exit_layer: int):
        """One draft step: ``tokens`` (B,) at ``pos`` through layers [0, exit_layer), the shared
        norm and head.  Returns the layer-``exit_layer`` hidden state (B, 1, D) and logits (B, V)."""
        return self.span_steps.run(self._step_key("draft", exit_layer), lambda t, p: self._draft(t, p, exit_layer),
                                   tokens, pos)

    @torch.no_grad()
    def verify(self, last: torch.Tensor, hidden: torch.Tensor, pos: torch.Tensor, exit_layer: int) -> torch.Tensor:
        """Logits (B, k+1, V) of the full model for the k drafted inputs and the last draft token.

        ``hidden`` (B, k, D) are the cached layer-``exit_layer`` states of the inputs at ``pos``..
        ``pos+k-1``; only ``last`` (at ``pos+k``) goes through the early layers here.
        """
        return self.span_steps.run(self._step_key("verify", exit_layer),
                                   lambda t, h, p: self._verify(t, h, p, exit_layer), last, hidden, pos)

    def crop(self, length: int) -> None:
        """Forget cached positions from ``length`` on (rejected drafts)."""
        self.cache.crop(length)
