import torch

from sc_llm.core.base.seeding import torch_seeded


def test_torch_seeded_repeats_draws_and_restores_the_callers_state():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with torch_seeded(7):
        a = torch.rand(4)
    with torch_seeded(7, device=torch.device("cpu")):
        b = torch.rand(4)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's stream is where it was
