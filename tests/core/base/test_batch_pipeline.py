import threading
import time

import numpy as np
import pytest
import torch

from sc_llm.core.base.batch_pipeline import ordered_map, prefetched
from sc_llm.core.text.encoder import TextEncoder


def test_ordered_map_keeps_order_with_uneven_work():
    def slow_for_small(x):
        time.sleep(0.02 * (5 - x % 5))  # earlier items finish later
        return x * x

    assert list(ordered_map(slow_for_small, range(12), workers=3, ahead=4)) == [x * x for x in range(12)]


def test_ordered_map_runs_ahead_in_other_threads_but_bounded():
    started, main = [], threading.get_ident()

    def work(x):
        started.append(x)
        assert threading.get_ident() != main
        return x

    it = ordered_map(work, range(100), workers=1, ahead=3)
    assert next(it) == 0
    time.sleep(0.1)
    assert 2 <= len(started) <= 4  # prefetched the next items, not the whole input
    it.close()
    time.sleep(0.05)
    assert len(started) <= 4  # closing cancels what had not started


def test_ordered_map_raises_the_workers_error_in_turn():
    def fail_on_three(x):
        if x == 3:
            raise RuntimeError("bad batch 3")
        return x

    seen = []
    with pytest.raises(RuntimeError, match="bad batch 3"):
        for x in ordered_map(fail_on_three, range(10), workers=2, ahead=2):
            seen.append(x)
    assert seen == [0, 1, 2]
    with pytest.raises(ValueError, match="must be positive"):
        list(ordered_map(str, range(3), workers=0))


def test_parallel_batches_give_the_same_embeddings(tiny_bert_dir):
    rng = np.random.default_rng(0)
    genes = ["CD3E", "LYZ", "MS4A1", "CD79A", "NKG7", "GNLY", "CST3", "S100A8"]
    sentences = [" ".join(rng.choice(genes, rng.integers(1, 8))) for _ in range(37)]
    one = TextEncoder(str(tiny_bert_dir), device="cpu", max_length=12, parallel_batches=1)
    X1, _ = one.encode(sentences, batch_size=4, progress=False)
    before = torch.get_num_threads()
    three = TextEncoder(str(tiny_bert_dir), device="cpu", max_length=12, parallel_batches=3)
    calls, forward = [], three.forward_pooled

    def recorded(*args, **kwargs):
        calls.append((threading.get_ident(), torch.get_num_threads()))
        time.sleep(0.01)  # let the other workers pick up batches
        return forward(*args, **kwargs)

    three.forward_pooled = recorded
    X3, _ = three.encode(sentences, batch_size=4, progress=False)
    assert len(calls) == 10 and {n for _, n in calls} == {max(1, before // 3)}  # the threads shared out
    assert len({t for t, _ in calls}) > 1 and threading.get_ident() not in {t for t, _ in calls}
    assert torch.get_num_threads() == before
    np.testing.assert_allclose(X3, X1, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="parallel_batches"):
        TextEncoder(str(tiny_bert_dir), device="cpu", parallel_batches=0)


def test_collate_pads_right_and_pins_only_when_asked(tiny_bert_dir):
    enc = TextEncoder(str(tiny_bert_dir), device="cpu", max_length=12)
    ids, mask = enc.collate([[1, 2, 3], [4]])
    assert ids.tolist() == [[1, 2, 3], [4, enc.tokenizer.pad_token_id, enc.tokenizer.pad_token_id]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert not ids.is_pinned()


@pytest.mark.gpu
def test_cuda_prefetch_pins_and_matches_cpu(tiny_bert_dir):
    sentences = ["CD3E LYZ", "MS4A1 CD79A NKG7 GNLY", "", "CST3"] * 9
    on_cpu = TextEncoder(str(tiny_bert_dir), device="cpu", max_length=12)
    cpu, _ = on_cpu.encode(sentences, batch_size=4, progress=False)
    enc = TextEncoder(str(tiny_bert_dir), device="cuda", max_length=12)
    assert enc.collate([[1, 2]], pin=True)[0].is_pinned()
    gpu, _ = enc.encode(sentences, batch_size=4, progress=False)
    cos = (gpu * cpu).sum(1) / np.linalg.norm(gpu, axis=1) / np.linalg.norm(cpu, axis=1)
    assert cos.min() >= 0.99


def test_prefetched_runs_the_generator_ahead_in_a_background_thread():
    produced, main = [], threading.get_ident()

    def cells():
        for i in range(6):
            produced.append((i, threading.get_ident()))
            yield i

    it = prefetched(cells(), ahead=2, transform=lambda x: -x)
    assert next(it) == 0
    time.sleep(0.05)
    assert [i for i, _ in produced][:3] == [0, 1, 2] and len(produced) <= 3  # two steps ahead, no more
    assert list(it) == [-1, -2, -3, -4, -5]
    assert main not in {t for _, t in produced}


def test_prefetched_raises_the_producers_error_after_the_good_items():
    def cells():
        yield 1
        raise OSError("chunk 2 unreadable")

    it = prefetched(cells())
    assert next(it) == 1
    with pytest.raises(OSError, match="chunk 2 unreadable"):
        next(it)


def test_tokenising_overlapped_with_embedding_gives_the_same_result(tiny_bert_dir):
    """The CUDA path of ``encode`` (tokenise chunk k+1 while chunk k embeds), run on the CPU with small chunks."""
    rng = np.random.default_rng(1)
    genes = ["CD3E", "LYZ", "MS4A1", "CD79A", "NKG7", "GNLY", "CST3", "S100A8"]
    sentences = [" ".join(rng.choice(genes, rng.integers(1, 12))) for _ in range(23)]
    enc = TextEncoder(str(tiny_bert_dir), device="cpu", max_length=10)
    X, truncated = enc.encode(sentences, batch_size=4, progress=False)
    X2, truncated2 = enc._encode_overlapped(sentences, chunk=5, batch_size=4, progress=False)
    np.testing.assert_allclose(X2, X, rtol=0, atol=1e-6)
    assert truncated.any() and (truncated2 == truncated).all()
