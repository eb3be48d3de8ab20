import random

import torch
from genaccel.api import LengthDistribution
from genaccel.llm.decoding import top_k_pick, top_p_pick
from genaccel.llm.guidance import guided_logits


def test_length_distribution_follows_min_max_mean():
    dist = LengthDistribution(min=44, max=430, mean=153.5)
    xs = dist.sample(20000, random.Random(0))
    assert min(xs) >= 44 and max(xs) <= 430
    assert abs(sum(xs) / len(xs) - 153.5) < 3


def test_top_p_is_seeded_and_matches_the_nucleus_distribution():
    logits = torch.tensor([[2.0, 1.5, 1.0, 0.0, -1.0, -3.0]]).repeat(40000, 1)
    pick = top_p_pick(1.0, 0.8, torch.Generator().manual_seed(1))
    a = pick(logits)
    b = top_p_pick(1.0, 0.8, torch.Generator().manual_seed(1))(logits)
    assert torch.equal(a, b)
    probs = torch.softmax(logits[0], -1)
    keep = (probs.cumsum(0) - probs) <= 0.8  # nucleus: smallest prefix with mass >= 0.8
    expected = torch.where(keep, probs, 0) / probs[keep].sum()
    observed = torch.bincount(a, minlength=6).float() / len(a)
    assert observed[~keep].sum() == 0
    assert torch.allclose(observed, expected, atol=0.01), (observed, expected)


def test_top_k_draws_from_the_renormalized_top_k():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -5.0]]).repeat(40000, 1)
    pick = top_k_pick(3, 0.5, torch.Generator().manual_seed(0))
    draws = pick(logits)
    assert torch.equal(draws, top_k_pick(3, 0.5, torch.Generator().manual_seed(0))(logits))  # seeded
    expected = torch.softmax(torch.tensor([2.0, 1.0, 0.0]) / 0.5, dim=0)
    freq = torch.bincount(draws, minlength=5).float() / draws.numel()
    assert freq[3:].sum() == 0
    torch.testing.assert_close(freq[:3], expected, atol=0.01, rtol=0)
    assert torch.equal(top_k_pick(1, 1.0, torch.Generator())(logits[:2]), torch.zeros(2, dtype=torch.long))  # k=1: argmax
    assert set(top_k_pick(50, 1.0, torch.Generator().manual_seed(1))(logits[:500]).tolist()) == {0, 1, 2, 3, 4}  # k > V


def test_guidance_mixes_in_float32_and_keeps_masked_tokens_masked():
    cond = torch.randn(3, 10, generator=torch.Generator().manual_seed(0)).bfloat16()
    uncond = torch.randn(3, 10, generator=torch.Generator().manual_seed(1)).bfloat16()
    low = torch.finfo(torch.bfloat16).min
    cond[:, :2] = uncond[:, :2] = low
    mixed = guided_logits(cond, uncond, 1.2)
    assert mixed.dtype == torch.float32
    c, u = cond[:, 2:].float(), uncond[:, 2:].float()
    torch.testing.assert_close(mixed[:, 2:], u + 1.2 * (c - u))
    assert (mixed[:, :2] == low).all()  # masked on both sides: still the minimum, never picked
    torch.testing.assert_close(guided_logits(cond, uncond, 1.0), cond.float())
    pick = top_k_pick(8, 1.0, torch.Generator().manual_seed(0))
    assert all((pick(mixed) >= 2).all() for _ in range(50))
