"""The prompts of text-to-image and text-to-video workloads (built-in ones, or the user's ``--data``
files) and saving the images and videos they make."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
from PIL import Image

from ..errors import GenaccelError
from ..files import read_text, writing


@attrs.frozen(kw_only=True)
class PromptSample:
    """One text prompt of a diffusion workload; ``seed`` seeds its initial latents."""

    id: str
    prompt: str
    seed: int
    input_tokens: int = 0

    @property
    def input_lengths(self) -> dict[str, int]:
        return {"text": self.input_tokens}


PROMPTS = (
    "A photograph of an astronaut riding a horse on the moon.",
    "A red fox sitting in a snowy forest at dawn, highly detailed.",
    "An oil painting of a lighthouse on a cliff during a storm.",
    "A bowl of ramen with a soft-boiled egg, studio lighting.",
    "A futuristic city skyline at night with flying cars.",
    "A watercolor of a cat sleeping on a stack of books.",
    "A close-up of a hummingbird drinking from a purple flower.",
    "A cozy cabin in the mountains with smoke rising from the chimney.",
    "A vintage car parked on a cobblestone street in Paris.",
    "A panda eating bamboo in a misty bamboo forest.",
    "A sailboat on a calm lake reflecting the sunset.",
    "A steampunk robot playing the violin on a stage.",
)


def pick_prompts(data, n: int, seed: int, prompts: Sequence[str] = PROMPTS) -> list[str]:
    """``n`` prompt texts: the built-in ones (``prompts``: the workload's own list, else :data:`PROMPTS`) or one
    per line of the ``--data`` folder's *.txt files, cycled from ``seed``."""
    prompts = list(prompts)
    if data is not None:
        files = sorted(Path(data).glob("*.txt"))
        prompts = [line.strip() for f in files for line in read_text(f, "prompt file").splitlines() if line.strip()]
        if not prompts:
            raise GenaccelError(f"--data {str(data)!r} holds no prompts (*.txt files, one prompt per line)")
    return [prompts[(seed + i) % len(prompts)] for i in range(n)]


def prompt_samples(tokenizer, data, n: int, seed: int) -> list[PromptSample]:
    """``n`` prompts of a text-to-image or text-to-video workload (:func:`pick_prompts`); sample ``i`` seeds
    its latents with ``seed * 100003 + i``."""
    return [PromptSample(id=str(i), prompt=p, seed=seed * 100_003 + i, input_tokens=len(tokenizer(p).input_ids))
            for i, p in enumerate(pick_prompts(data, n, seed))]


def prompt_sample(tokenizer, text: str) -> PromptSample:
    """The prompt of ``genaccel generate``."""
    return PromptSample(id="0", prompt=text, seed=0, input_tokens=len(tokenizer(text).input_ids))


def save_images(batch, images, out_dir) -> list[dict]:
    """Each sample's image (H, W, 3), float in [0, 1] or uint8, as a PNG in ``out_dir/images`` (when
    given); per-sample record fields: its size and the files written (none for a sample whose image
    is None: a model that produced no image for it)."""
    extras = []
    for sample, image in zip(batch, images):
        if image is None:
            extras.append({})
            continue
        extra = {"image_size": list(image.shape[:2])}
        if out_dir:
            folder = Path(out_dir) / "images"
            path = folder / (sample.id.replace("/", "-") + ".png")
            pixels = image.numpy()
            if pixels.dtype != "uint8":
                pixels = (pixels * 255).round().astype("uint8")
            with writing(path):  # a full disk: one line naming the image
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path)
            extra["files"] = [str(path)]
        extras.append(extra)
    return extras


def save_videos(batch, videos, out_dir, *, frame_ms: int = 125) -> list[dict]:
    """Each sample's video (F, H, W, 3) in [0, 1] as an animated GIF (``frame_ms`` a frame, looping) and
    its frames as PNGs in ``out_dir/videos`` (when given); per-sample record fields: frames, size, files."""
    from PIL import Image

    extras = []
    for sample, video in zip(batch, videos):
        extra = {"frames": video.shape[0], "image_size": list(video.shape[1:3])}
        if out_dir:
            folder = Path(out_dir) / "videos"
            stem = sample.id.replace("/", "-")
            (folder / stem).mkdir(parents=True, exist_ok=True)
            images = [Image.fromarray(f) for f in (video.numpy() * 255).round().astype("uint8")]
            gif = folder / f"{stem}.gif"
            images[0].save(gif, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
            pngs = [folder / stem / f"frame-{i:03d}.png" for i in range(len(images))]
            for image, path in zip(images, pngs):
                image.save(path)
            extra["files"] = [str(gif), *map(str, pngs)]
        extras.append(extra)
    return extras


class Prompted:
    """The members of a text-to-image or text-to-video workload with a ``tokenizer`` and the user's
    ``data`` folder that roles Workload and PromptInput call: its samples and ``generate``'s prompt."""

    def make_samples(self, n: int, seed: int, max_new_tokens=None, seq_len=None) -> list[PromptSample]:
        return prompt_samples(self.tokenizer, self.data, n, seed)

    def prompt_sample(self, text: str, max_new_tokens=None, options=None) -> PromptSample:
        return prompt_sample(self.tokenizer, text)

    def input_source(self) -> str:
        """Where the prompts come from, for the report's provenance."""
        return f"prompts of --data {self.data}" if self.data is not None else f"the {len(PROMPTS)} built-in prompts"


def parameters(module) -> int:
    """How many parameters ``module`` holds (the figures ``describe()`` reports)."""
    return sum(p.numel() for p in module.parameters())
