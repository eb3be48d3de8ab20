import random

import torch
from genaccel.api import LengthDistribution
from genaccel.llm.decoding import top_p_pick


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
