"""parti/t-i's inputs: prompts in the manner of PartiPrompts (P2, Yu et al. 2022, Sec. 4.3) — one per P2
category, several of them aimed at a P2 challenge (counting, writing and symbols, perspective, imagination,
fine-grained detail, complex and long prompts) — written for genaccel, or the user's ``--data`` files; and the
sample a decoder runs: the text's ids for the encoder, ``<bos>`` as the decoder's prompt."""

from __future__ import annotations

import attrs

from .presets import IMAGE_BOS

#: (P2 category, challenge) noted beside each prompt
PROMPTS = (
    "A wooden bench in a quiet park covered with fallen autumn leaves.",  # outdoor scenes
    "Three red apples and two green pears arranged on a white plate.",  # produce and plants; counting
    "A storefront sign that reads 'OPEN LATE' in glowing neon letters.",  # artifacts; writing and symbols
    "A corgi wearing sunglasses riding a skateboard down a city sidewalk.",  # animals; imagination
    "An astronaut reading a newspaper in a diner, photographed from below.",  # people; perspective
    "A bowl of miso soup with tofu cubes and sliced green onions, top view.",  # food and beverage
    "A vintage red bicycle leaning against a blue door on a narrow street.",  # vehicles
    "An abstract painting of overlapping circles in orange, teal and black.",  # abstract; arts
    "The Eiffel Tower at sunrise, seen across the river Seine.",  # world knowledge
    "A cozy reading nook with a window seat, pillows and a stack of books.",  # indoor scenes
    "A pencil sketch of a lighthouse on a rocky island during a storm.",  # illustrations
    "A close-up of a dragonfly's wing showing every vein in sharp detail.",  # animals; fine-grained detail
    "A chrome robot watering tomato plants in a greenhouse while a cat sleeps on a shelf above it, "
    "warm afternoon light streaming through the glass panes.",  # complex; long
    "A watercolor map of an imaginary island with mountains, rivers and a small harbor town.",  # arts
    "A kangaroo holding a sign that says 'hello friends' in front of the Sydney Opera House.",  # writing; world
    "Two teacups on a saucer, one upside down, on a checkered tablecloth.",  # artifacts; counting
)


@attrs.frozen(kw_only=True)
class PartiSample:
    """One prompt: ``source_ids`` (its text ids, ending in ``</s>``) feed the encoder; ``input_ids`` is the
    decoder's prompt (``<bos>``), after which it writes ``max_new_tokens`` image tokens."""

    id: str
    prompt: str = attrs.field(repr=False)
    source_ids: tuple[int, ...] = attrs.field(converter=tuple)
    max_new_tokens: int = attrs.field(validator=attrs.validators.ge(1))
    input_ids: tuple[int, ...] = (IMAGE_BOS,)

    @property
    def input_lengths(self) -> dict[str, int]:
        return {"text": len(self.source_ids)}
