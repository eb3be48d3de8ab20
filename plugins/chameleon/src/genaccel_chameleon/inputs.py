"""Inputs: scikit-image's sample photographs, COCO-style prompts and questions, the user's files.

Images are read with Pillow and prepared as Chameleon's processor does (transformers'
``ChameleonImageProcessor``: transparent pixels on white, shortest edge resized, center crop,
scaled to [-1, 1]); grayscale and palette images are converted to RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from genaccel.api import GenaccelError, read_text

MIN_SIDE = 16  # pixels: smaller images carry too little to resize from
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")

# scikit-image's bundled photographs (no download): name → loader name
SAMPLE_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "camera", "hubble_deep_field",
                 "immunohistochemistry")

CAPTION_INSTRUCTIONS = [
    "Describe this image in one sentence.",
    "Write a short caption for this picture.",
    "What is shown in this photograph? Answer briefly.",
    "Give a one-line description of the scene.",
]

# (image, question): VQA-style, 3 to ~65 tokens
QUESTIONS = [
    ("astronaut", "What is the person holding?"),
    ("astronaut", "Is the person in the picture wearing a space suit, and what flag can be seen on the shoulder?"),
    ("coffee", "What drink is this?"),
    ("coffee", "What color is the saucer under the cup?"),
    ("chelsea", "What animal is this?"),
    ("chelsea", "Is the cat looking at the camera or away from it, and what color is its fur?"),
    ("rocket", "Is the rocket on the ground or in the air?"),
    ("rocket", "How many towers stand next to the launch vehicle in this photograph, and is there any smoke?"),
    ("motorcycle", "What vehicle is parked here?"),
    ("camera", "What is the man doing?"),
    ("camera", "Describe the tripod and the device on top of it, and tell me whether the photograph is in "
               "color or in black and white, and what the weather looks like in the background of the scene."),
    ("hubble_deep_field", "What are the bright spots?"),
    ("immunohistochemistry", "Is this a microscope image?"),
]

# text → image prompts, ~10-22 tokens each (the study's T-I input lengths)
IMAGE_PROMPTS = [
    "A red double-decker bus driving down a rainy city street at night.",
    "A bowl of fresh fruit with apples, bananas and grapes on a wooden table.",
    "Two dogs playing with a frisbee on a sunny beach near the water.",
    "A snowy mountain peak above a calm blue lake at sunrise.",
    "A cup of coffee and a croissant on a small cafe table by the window.",
    "An astronaut riding a horse across a desert under a purple sky.",
    "A vintage motorcycle parked in front of a brick wall covered in ivy.",
    "A tabby cat sleeping on a stack of old books next to a lamp.",
    "A lighthouse on a rocky cliff with waves crashing below it.",
    "A child flying a kite in a green park on a windy afternoon.",
    "A plate of spaghetti with tomato sauce and basil leaves.",
    "A rocket lifting off from a launch pad with clouds of smoke.",
]


def sample_images() -> list[tuple[str, np.ndarray]]:
    """scikit-image's sample photographs as RGB uint8 arrays."""
    from skimage import data

    images = []
    for name in SAMPLE_IMAGES:
        image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
        images.append((name, _rgb(np.asarray(image), name)))
    return images


def _rgb(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype != np.uint8:
        image = (image.astype(np.float64) * (255 if image.max() <= 1 else 1)).clip(0, 255).astype(np.uint8)
    if image.ndim == 2:  # grayscale: converted, as the processor does
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise GenaccelError(f"image {name!r} has shape {image.shape}; expected H×W, H×W×3 or H×W×4")
    if image.shape[-1] == 4:  # transparent pixels on white
        alpha = image[..., 3:].astype(np.float32) / 255
        image = (image[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    if min(image.shape[:2]) < MIN_SIDE:
        raise GenaccelError(f"image {name!r} is {image.shape[1]}×{image.shape[0]} pixels; "
                            f"give one at least {MIN_SIDE}×{MIN_SIDE}")
    return image


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 array from an image file, or a clear error."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise GenaccelError(f"image {str(path)!r} does not exist or is not a file")
    try:
        with Image.open(path) as im:
            im = im.convert("RGBA") if im.mode in ("P", "LA", "RGBA") else im.convert("RGB")
            return _rgb(np.asarray(im), str(path))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise GenaccelError(f"{str(path)!r} is not a readable image (PNG, JPEG, ...): {e}") from None


def _processor(size: int):
    try:
        from transformers.models.chameleon.image_processing_pil_chameleon import ChameleonImageProcessorPil as P
    except ImportError:  # transformers versions with one (PIL) processor class
        from transformers import ChameleonImageProcessor as P
    return P(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def preprocess(image: np.ndarray, size: int) -> torch.Tensor:
    """RGB uint8 (H, W, 3) → (3, size, size) float in [-1, 1], as Chameleon's processor prepares it."""
    from PIL import Image

    return _processor(size)(Image.fromarray(image), return_tensors="pt")["pixel_values"][0]


def user_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise GenaccelError(f"--data {str(folder)!r} is not a directory of images and prompt files")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise GenaccelError(f"--data {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return images


def user_prompts(folder: Path, *, required: bool = True) -> list[str]:
    """Non-empty lines of the folder's *.txt files."""
    if not folder.is_dir():
        raise GenaccelError(f"--data {str(folder)!r} is not a directory of prompt files")
    lines = [line.strip() for f in sorted(folder.glob("*.txt")) for line in read_text(f, "prompt file").splitlines()]
    lines = [line for line in lines if line]
    if required and not lines:
        raise GenaccelError(f"--data {str(folder)!r} holds no prompts: put one per line in *.txt files")
    return lines
