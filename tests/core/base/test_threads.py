import pytest
import torch

from sc_llm.core.base.threads import cpu_parallel_batches, cpu_threads


def test_cpu_threads_restores_the_setting():
    before = torch.get_num_threads()
    with pytest.raises(KeyError), cpu_threads(1):
        assert torch.get_num_threads() == 1
        raise KeyError
    assert torch.get_num_threads() == before


def test_cpu_parallel_batches_default_and_bounds():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert cpu_parallel_batches(None, 1000) == (2, 1)
        assert cpu_parallel_batches(4, 2) == (2, 1)
        assert cpu_parallel_batches(3, 0) == (1, 2)
        torch.set_num_threads(12)
        assert cpu_parallel_batches(None, 1000) == (4, 3)  # at most 4 at once, threads shared out
        assert cpu_parallel_batches(None, 2) == (2, 6)  # fewer batches than threads: none left idle
    finally:
        torch.set_num_threads(before)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="parallel_batches"):
            cpu_parallel_batches(bad, 10)


def test_cpu_threads_is_a_no_op_off_the_cpu_or_for_none_and_at_most_only_lowers():
    before = torch.get_num_threads()
    with cpu_threads(None):
        assert torch.get_num_threads() == before
    with cpu_threads(1, device=torch.device("cuda")):  # a device that is not a CPU: nothing to pin
        assert torch.get_num_threads() == before
    with cpu_threads(before + 3, at_most=True):
        assert torch.get_num_threads() == before
    with cpu_threads(1, device=torch.device("cpu"), at_most=True):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
