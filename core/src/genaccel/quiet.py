"""Third-party messages that say nothing about the user's run, kept off stderr.

Each filter names one library's logger (or warning category and module) and one message, so that
everything else those libraries say still shows:

- torchao's ``Failed to load .../_C*.so`` at import (its CUDA kernels, absent from a CPU wheel; the
  CPU quantizations do not use them), logged when transformers imports torchao;
- torch's ``<enum ...> is an Enum subclass and is now natively supported ...`` that torchao's
  ``register_constant`` calls log at the same import;
- diffusers' ``Unable to import `torchao` Tensor objects`` at import (the same missing kernels);
- transformers' ``FutureWarning: `past_key_values` is deprecated ...``, raised by its own decoder
  layers on every forward that passes a cache (genaccel passes it where transformers asks for it);
- transformers' ``Instantiating a decoder SeamlessM4Tv2Attention without passing `layer_idx```,
  logged while its own SeamlessM4T v2 constructor builds the model (genaccel's steps pass their own caches);
- torch's ``Int8Tensor does not implement _stable_hash_for_caching`` when a torchao int8 model is
  compiled (it only means that AOT autograd's on-disk cache is not used for that graph);
- the Hugging Face progress bars (transformers' ``Loading weights``, read from a local folder in a
  moment), which would otherwise stand before a one-line error: ``HF_HUB_DISABLE_PROGRESS_BARS`` is
  set unless the user set it (``=0`` brings them back).

:func:`install` runs when genaccel is imported (stdlib only, nothing else is imported) and is idempotent.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

#: logger name -> pattern of the messages dropped from it
LOG_MESSAGES = {
    "torchao": re.compile(r"Failed to load .*_C\w*\.\S*so\b"),
    "torch.utils._pytree": re.compile(r"is an Enum subclass and is now natively supported by torch\.compile"),
    "diffusers.quantizers.torchao.torchao_quantizer": re.compile(r"Unable to import `torchao` Tensor objects"),
    "transformers.models.seamless_m4t_v2.modeling_seamless_m4t_v2": re.compile(
        r"Instantiating a decoder SeamlessM4Tv2Attention without passing `layer_idx`"),
}
#: (category, message pattern, module pattern) of the warnings ignored
WARNINGS = ((FutureWarning, r"`past_key_values` is deprecated", r"transformers\."),
            (UserWarning, r"Int8Tensor does not implement _stable_hash_for_caching", r"torch\."))


class _Drop(logging.Filter):
    def __init__(self, pattern: re.Pattern[str]):
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return not self.pattern.search(record.getMessage())
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is shown as it is
            return True


_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when huggingface_hub is imported
    for name, pattern in LOG_MESSAGES.items():
        logging.getLogger(name).addFilter(_Drop(pattern))
    for category, message, module in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


__all__ = ["LOG_MESSAGES", "WARNINGS", "install"]
