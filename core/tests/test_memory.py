"""Weights copied into huge-page memory: the same values and outputs, the same parameters, sharing kept."""

import pytest
import torch
from genaccel.engine import memory
from torch import nn

pytestmark = pytest.mark.skipif(memory.huge_pages_unavailable() is not None,
                                reason=str(memory.huge_pages_unavailable()))


class Fused(nn.Module):
    """Two linears viewing one fused weight (as fused projections do), a tied head, a small norm."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(1024, 512)  # 2 MiB
        fused = torch.randn(2 * 1024, 512)
        self.a, self.b = nn.Linear(512, 1024, bias=False), nn.Linear(512, 1024, bias=False)
        self.a.weight, self.b.weight = nn.Parameter(fused[:1024]), nn.Parameter(fused[1024:])
        self.head = nn.Linear(512, 1024, bias=False)
        self.head.weight = self.embed.weight
        self.norm = nn.LayerNorm(512)
        self.register_buffer("table", torch.randn(1024, 1024))

    def forward(self, ids):
        h = self.norm(self.embed(ids))
        return self.head(h) + self.a(h) * self.b(h) + self.table[ids]


def test_storages_move_with_their_views_and_ties_and_the_outputs_stay_equal():
    torch.manual_seed(0)
    model = Fused()
    ids = torch.tensor([[1, 5, 1000]])
    with torch.no_grad():
        want = model(ids)
    params = dict(model.named_parameters(remove_duplicate=False))
    norm_ptr = model.norm.weight.data_ptr()

    count, nbytes = memory.move_to_huge_pages(model)

    assert count == 3  # the embedding (tied head), the fused weight, the buffer; the norm is too small
    assert nbytes == (1024 * 512 + 2048 * 512 + 1024 * 1024) * 4
    assert dict(model.named_parameters(remove_duplicate=False)) == params  # the same Parameter objects
    assert model.head.weight.data_ptr() == model.embed.weight.data_ptr()
    assert model.b.weight.data_ptr() - model.a.weight.data_ptr() == 1024 * 512 * 4  # still one storage
    assert model.norm.weight.data_ptr() == norm_ptr
    for t in (model.embed.weight, model.a.weight, model.table):
        assert t.data_ptr() % memory.HUGE_PAGE == 0
    with torch.no_grad():
        assert torch.equal(model(ids), want)
    assert memory.move_to_huge_pages(model) == (0, 0)  # moved once


def test_tensor_subclasses_are_left_where_they_are():
    class Tagged(torch.Tensor):
        pass

    layer = nn.Linear(1024, 1024)
    layer.weight = nn.Parameter(torch.randn(1024, 1024).as_subclass(Tagged))
    ptr = layer.weight.data_ptr()
    assert memory.move_to_huge_pages(layer) == (0, 0)
    assert layer.weight.data_ptr() == ptr
