"""The prompts of text-to-image and text-to-video workloads (built-in ones, or the user's ``--data``
files) and saving the images and videos they make."""

from __future__ import annotations

from pathlib import Path

import attrs

from ..errors import GenaccelError
from ..files import read_text


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


def prompt_samples(tokenizer, data, n: int, seed: int) -> list[PromptSample]:
    """``n`` prompts of a text-to-image or text-to-video workload: the built-in ones, or one per line
    of the ``--data`` folder's *.txt files; sample ``i`` seeds its latents with ``seed * 100003 + i``."""
    prompts = list(PROMPTS)
    if data is not None:
        files = sorted(Path(data).glob("*.txt"))
        prompts = [line.strip() for f in files for line in read_text(f, "prompt file").splitlines() if line.strip()]
        if not prompts:
            raise GenaccelError(f"--data {str(data)!r} holds no prompts (*.txt files, one prompt per line)")
    picked = [prompts[(seed + i) % len(prompts)] for i in range(n)]
    return [PromptSample(id=str(i), prompt=p, seed=seed * 100_003 + i, input_tokens=len(tokenizer(p).input_ids))
            for i, p in enumerate(picked)]


def prompt_sample(tokenizer, text: str) -> PromptSample:
    """The prompt of ``genaccel generate``."""
    return PromptSample(id="0", prompt=text, seed=0, input_tokens=len(tokenizer(text).input_ids))


def save_images(batch, images, out_dir) -> list[dict]:
    """Each sample's image (H, W, 3) in [0, 1] as a PNG in ``out_dir/images`` (when given); per-sample
    record fields: its size and the files written."""
    from PIL import Image

    extras = []
    for sample, image in zip(batch, images):
        extra = {"image_size": list(image.shape[:2])}
        if out_dir:
            folder = Path(out_dir) / "images"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (sample.id.replace("/", "-") + ".png")
            Image.fromarray((image.numpy() * 255).round().astype("uint8")).save(path)
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


def parameters(module) -> int:
    """How many parameters ``module`` holds (the figures ``describe()`` reports)."""
    return sum(p.numel() for p in module.parameters())
