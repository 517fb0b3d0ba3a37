import copy

import numpy as np
import pytest
import torch

from sc_llm.core.finetune.checkpointing import latest_checkpoint, load_adapter, save_trained
from sc_llm.core.finetune.config import FinetuneConfig
from sc_llm.core.finetune.data import collate
from sc_llm.core.finetune.engine import finetune_causal_lm
from sc_llm.core.finetune.loss import accumulate_gradients
from sc_llm.core.llm.loading import load_causal_lm

# Two cell types, each with a fixed gene order to learn: the answer depends on the prompt.
ORDERS = {
    "B cell": ["CD79A", "MS4A1", "CD74", "HLA-DRA", "CD19", "TCL1A", "CD22", "BANK1"],
    "T cell": ["CD3D", "CD3E", "IL7R", "CD2", "LTB", "CCR7", "LEF1", "TCF7"],
}


@pytest.fixture(scope="module")
def lm(tiny_causal_lm):
    """The tiny random Llama (real loader, real tokenizer) with weights of pretrained-like scale, and a factory.

    The fixture's weights have std 0.02 (tied embeddings, 2 layers of width 32): every logit stays near ±0.6
    and the layers barely move the residual stream, whatever a LoRA adapter learns. Re-drawing the matrices
    with std 0.2 gives the scale a pretrained model has, so the toy task is learnable by LoRA as it is there.
    """
    model, tok = load_causal_lm(tiny_causal_lm, device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)

    def fresh():
        return copy.deepcopy(model)

    return fresh, tok


def make_examples(tok, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ct = str(rng.choice(list(ORDERS)))
        prompt = tok(f"Generate a list of genes of a {ct} cell sentence :").input_ids
        out.append((prompt, tok(" " + " ".join(ORDERS[ct])).input_ids))
    return out


def cfg(**kw):
    base = {"batch_size": 4, "lr": 1e-2, "lr_schedule": "constant", "progress": False, "cpu_threads": 1}
    return FinetuneConfig(**(base | kw))


def run(lm, train, val=None, **kw):
    fresh, tok = lm
    return finetune_causal_lm(
        fresh(), train, val, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, config=cfg(**kw)
    )


def trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_lora_learns_a_gene_order_and_keeps_base_weights_frozen(lm):
    from peft import PeftModel

    fresh, tok = lm
    base_before = {n: p.clone() for n, p in fresh().named_parameters()}
    train, val = make_examples(tok, 48, 0), make_examples(tok, 12, 1)
    result = run(lm, train, val, epochs=4, eval_every=6)
    h = result.history
    assert isinstance(result.model, PeftModel)
    assert h["step"][0] == 0 and h["train_loss"][0] is None and h["step"][-1] == h["n_steps"] == 48
    assert h["val_loss"][-1] < 0.25 * h["val_loss"][0], h["val_loss"]
    assert h["best_val_loss"] == min(h["val_loss"]) and h["dtype"] == "float32" and h["device"] == "cpu"
    assert h["config"]["method"] == "lora" and h["train_tokens"] > 0
    base = result.model.get_base_model()
    for name, p in base.named_parameters():
        if "lora_" not in name:
            key = name.replace(".base_layer", "")
            assert torch.equal(p, base_before[key]), name
    assert not result.model.training


def test_full_fine_tuning_changes_the_base_weights(lm):
    fresh, tok = lm
    before = fresh().model.layers[0].mlp.up_proj.weight.clone()
    result = run(lm, make_examples(tok, 8, 0), max_steps=2, method="full")
    assert not torch.equal(result.model.model.layers[0].mlp.up_proj.weight, before)
    h = result.history
    assert h["n_steps"] == 2 and h["step"] == [2] and h["val_loss"] == [None] and h["best_step"] is None


def test_same_seed_same_weights_and_callers_rng_untouched(lm):
    _, tok = lm
    train = make_examples(tok, 12, 0)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = trainable(run(lm, train, max_steps=4, seed=7).model)
    assert torch.equal(torch.get_rng_state(), state)
    b = trainable(run(lm, train, max_steps=4, seed=7).model)
    c = trainable(run(lm, train, max_steps=4, seed=8).model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_accumulated_gradients_equal_one_large_batch(lm):
    from peft import LoraConfig, get_peft_model

    fresh, tok = lm
    torch.manual_seed(0)
    model = get_peft_model(
        fresh(), LoraConfig(r=4, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False)
    )
    examples = [_ex(e) for e in make_examples(tok, 4, 3)]
    examples[1] = _ex((examples[1].prompt_ids, examples[1].answer_ids[:3]))  # unequal answer lengths
    kw = {"pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}
    grads = []
    for batches in ([collate(examples, **kw)], [collate(examples[:2], **kw), collate(examples[2:], **kw)]):
        model.zero_grad()
        loss = accumulate_gradients(model, batches, device=torch.device("cpu"))
        grads.append((loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}))
    (l4, g4), (l22, g22) = grads
    assert l4 == pytest.approx(l22, rel=1e-5)
    for name in g4:
        torch.testing.assert_close(g4[name], g22[name], rtol=1e-4, atol=1e-6)


def _ex(pair):
    from sc_llm.core.finetune.data import Example

    return Example(tuple(pair[0]), tuple(pair[1]))


def test_accumulation_trains_like_the_larger_batch(lm):
    _, tok = lm
    train = make_examples(tok, 16, 0)
    a = trainable(run(lm, train, max_steps=3, batch_size=4, lora_dropout=0.0).model)
    b = trainable(run(lm, train, max_steps=3, batch_size=2, gradient_accumulation_steps=2, lora_dropout=0.0).model)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


class Interrupt(RuntimeError):
    pass


def test_interrupted_run_resumes_to_the_same_weights(lm, tmp_path):
    _, tok = lm
    train, val = make_examples(tok, 12, 0), make_examples(tok, 4, 1)
    settings = {"max_steps": 7, "eval_every": 2, "warmup_steps": 2, "lr_schedule": "linear", "weight_decay": 0.01}
    full = run(lm, train, val, output_dir=str(tmp_path / "a"), **settings)

    def kill_at_4(info):
        if info["step"] == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        fresh, _ = lm
        finetune_causal_lm(
            fresh(),
            train,
            val,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            config=cfg(output_dir=str(tmp_path / "b"), **settings),
            callback=kill_at_4,
        )
    assert latest_checkpoint(tmp_path / "b").name == "checkpoint-4"
    resumed = run(lm, train, val, output_dir=str(tmp_path / "b"), **settings)
    assert resumed.history["resumed_from_step"] == 4
    a, b = trainable(full.model), trainable(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for key in ("step", "train_loss", "val_loss", "lr", "best_step"):
        assert resumed.history[key] == full.history[key], key
    leftovers = [p.name for p in (tmp_path / "b").iterdir() if p.name.startswith(".")]
    assert leftovers == [] and sorted(p.name for p in (tmp_path / "b").iterdir()) == ["checkpoint-7", "latest"]
    state = torch.load(tmp_path / "b" / "checkpoint-7" / "trainer_state.pt", weights_only=True)
    assert state["state"]["step"] == 7


def test_early_stopping_restores_the_best_weights_and_stays_stopped(lm, tmp_path):
    from peft import PeftModel

    fresh, tok = lm
    train, val = make_examples(tok, 12, 0), make_examples(tok, 4, 1)
    # nothing counts as an improvement, so the untrained adapter (step 0) stays best and training stops early
    settings = {"max_steps": 20, "eval_every": 2, "patience": 2, "min_delta": 100.0, "output_dir": str(tmp_path)}
    result = run(lm, train, val, **settings)
    h = result.history
    assert h["stopped_early"] and h["n_steps"] == 4 and h["best_step"] == 0 and h["step"] == [0, 2, 4]
    assert isinstance(result.model, PeftModel)
    ids = torch.tensor([train[0][0]])
    with torch.no_grad():
        torch.testing.assert_close(result.model(ids).logits, fresh()(ids).logits)
    again = run(lm, train, val, **settings)  # resuming a stopped run trains no further
    assert again.history["n_steps"] == 4 and again.history["resumed_from_step"] == 4 and again.history["stopped_early"]
    with torch.no_grad():
        torch.testing.assert_close(again.model(ids).logits, fresh()(ids).logits)


def test_adapter_round_trip_through_safetensors(lm, tmp_path):
    fresh, tok = lm
    result = run(lm, make_examples(tok, 8, 0), max_steps=2)
    folder = save_trained(result.model, tmp_path / "adapter")
    assert (folder / "adapter_model.safetensors").is_file() and not list(folder.glob("*.bin"))
    save_trained(result.model, tmp_path / "adapter")  # replacing an existing folder works
    loaded = load_adapter(fresh(), folder)
    ids = torch.tensor([make_examples(tok, 1, 5)[0][0]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, result.model(ids).logits)
        assert not torch.allclose(fresh()(ids).logits, result.model(ids).logits)
    with pytest.raises(FileNotFoundError, match=r"no adapter_model\.safetensors"):
        load_adapter(fresh(), tmp_path)


def test_trainable_gene_token_rows_with_tied_embeddings(lm):
    fresh, tok = lm
    train = make_examples(tok, 8, 0)
    rows = sorted({t for _, a in train for t in a})[:5]
    result = run(lm, train, max_steps=3, trainable_token_indices=tuple(rows))
    names = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert any("trainable_tokens" in n for n in names)
    emb = result.model.get_input_embeddings()
    before = fresh().get_input_embeddings().weight
    after = emb(torch.arange(before.shape[0]))
    changed = torch.nonzero((after - before).abs().sum(1) > 0).flatten().tolist()
    assert changed == rows


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr": -1e-3}, "lr must be > 0"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"method": "qlora"}, "method='qlora' is not one of"),
        ({"padding_side": "middle"}, "padding_side"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"max_steps": 0}, "max_steps must be a positive integer"),
        ({"token_budget": 10, "max_length": 64}, "token_budget=10 is below max_length=64"),
    ],
)
def test_bad_config_is_refused_before_training(lm, kw, match):
    _, tok = lm
    with pytest.raises(ValueError, match=match):
        run(lm, make_examples(tok, 2, 0), **kw)


def test_bad_examples_are_refused(lm):
    _, tok = lm
    with pytest.raises(ValueError, match="No training examples"):
        run(lm, [])
    long = make_examples(tok, 2, 0)
    with pytest.raises(ValueError, match=r"train example 0 needs \d+ tokens .* max_length=10"):
        run(lm, long, max_length=10)
    with pytest.raises(ValueError, match="validation example 0 has an empty answer"):
        run(lm, long, [([1, 2], [])])


@pytest.mark.gpu
def test_cuda_bf16_training_moves_everything_to_the_device(lm):
    _, tok = lm
    train, val = make_examples(tok, 16, 0), make_examples(tok, 4, 1)
    result = run(lm, train, val, max_steps=8, eval_every=4, device="cuda")
    h = result.history
    assert h["device"].startswith("cuda") and h["dtype"] in ("bfloat16", "float16")
    assert all(p.device.type == "cuda" for p in result.model.parameters())
    assert np.isfinite(h["val_loss"]).all() and h["val_loss"][-1] < h["val_loss"][0]
