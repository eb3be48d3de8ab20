"""The denoising loop on a toy Denoiser: guidance batched and sequential agree, settings are checked."""

from __future__ import annotations

import pytest
import torch
from genaccel.api import PromptSample, StepExecutor, denoise, make_scheduler, settings
from genaccel.errors import GenaccelError
from genaccel.plugin.roles import Denoiser

pytest.importorskip("diffusers")


class ToyDenoiser:
    """Embeddings from prompt lengths; the "UNet" a fixed mix of latents and the text."""

    denoise_defaults = {"scheduler": "ddim", "num_inference_steps": 4, "guidance_scale": 5.0}
    scheduler_config = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                        "beta_end": 0.012}
    dtype = torch.float32
    units_per_sample = 1

    def __init__(self):
        self.executor = StepExecutor("cpu")
        self.forwards = []

    def encode_prompt(self, prompts):
        return torch.tensor([[float(len(p))] * 3 for p in prompts]).unsqueeze(1)  # (B, 1, 3)

    def encode_negative(self, batch_size):
        return self.encode_prompt([""] * batch_size)

    def latent_shape(self, batch_size):
        return (batch_size, 3, 2, 2)

    def predict_noise(self, latents, t, embeddings):
        self.forwards.append(latents.shape[0])
        return 0.1 * latents + 0.01 * embeddings[:, 0, :, None, None] * (t / 1000)

    def begin_step(self, index):
        pass

    def decode_latents(self, latents):
        return latents.clone()

    def save_outputs(self, batch, media, out_dir):
        return [{} for _ in batch]


def run(inst, sequential=False, **options):
    return denoise(inst, BATCH, settings(options, inst.denoise_defaults), sequential=sequential, device="cpu")


BATCH = [PromptSample(id="0", prompt="a cat", seed=1), PromptSample(id="1", prompt="a dog on a hill", seed=2)]


def test_toy_plays_the_role():
    assert Denoiser.problems(ToyDenoiser()) == []


@pytest.mark.parametrize("scheduler", ["ddim", "pndm", "dpm-solver", "euler", "ddpm"])
def test_batched_and_sequential_guidance_agree(scheduler):
    a, b = ToyDenoiser(), ToyDenoiser()
    batched, sequential = run(a, scheduler=scheduler), run(b, True, scheduler=scheduler)
    assert torch.allclose(batched.extra["media"], sequential.extra["media"], atol=1e-6)
    steps = batched.decode_steps
    assert a.forwards == [4] * steps and b.forwards == [2] * (2 * steps)
    assert batched.records[0]["units"] == 1 and set(batched.phases) == {"text encoder", "denoise", "vae decode"}


def test_no_guidance_at_scale_one():
    inst = ToyDenoiser()
    run(inst, guidance_scale=1.0)
    assert inst.forwards == [2] * 4


def test_settings_defaults_and_errors():
    defaults = ToyDenoiser.denoise_defaults
    s = settings({"num_inference_steps": "3"}, defaults)  # flags may arrive as text
    assert (s.scheduler, s.num_inference_steps, s.guidance_scale) == ("ddim", 3, 5.0)
    for options, message in [({"scheduler": "lms"}, "--scheduler 'lms' is not known"),
                             ({"num_inference_steps": 0}, "--num-inference-steps must be at least 1"),
                             ({"guidance_scale": "x"}, "--guidance-scale 'x' is not a number")]:
        with pytest.raises(GenaccelError, match=message):
            settings(options, defaults)
    with pytest.raises(GenaccelError, match="choose one of ddim, pndm, dpm-solver, euler, ddpm"):
        make_scheduler("unipc", {})
