import numpy as np

from sc_llm.core.cell_lm.model import CellLanguageModel

GENES = [f"G{i}" for i in range(12)]


def _lm():
    return CellLanguageModel.from_scratch(
        GENES, cell_types=["A", "B"], perturbations=["stim"], hidden_size=16, num_layers=1, num_heads=2, device="cpu"
    )


def test_control_pairs_add_one_identity_example_per_control_cell():
    lm = _lm()
    cells = [GENES[i : i + 4] for i in range(8)]
    types = np.array(["A", "A", "A", "B", "B", "B", "B", "A"])
    cond = np.array(["control", "stim", "control", "control", "stim", "control", "stim", "stim"])
    plain = lm.examples(cells, types, task="perturbation", conditions=cond, n_genes=4, seed=0)
    both = lm.examples(cells, types, task="perturbation", conditions=cond, n_genes=4, seed=0, control_pairs=True)
    assert len(plain) == 4 and both[:4] == plain  # the perturbation examples are unchanged
    extra = both[4:]
    assert len(extra) == 4  # one per control cell (rows 0, 2, 3, 5)
    for (prompt, answer), target in zip(extra, [0, 2, 3, 5], strict=True):
        assert answer == lm.answer_ids(cells[target])
        text = lm.tokenizer.decode(prompt)
        assert "after control" in text and f"sapiens {types[target]} control cell" in text
        # the prompt's sentence is another control cell of the same type, not the answer's own cell
        source = [i for i in (0, 2, 3, 5) if lm.vocab.encode(cells[i]) == _sentence(lm, prompt)]
        assert len(source) == 1 and source[0] != target and types[source[0]] == types[target]
    for prompt, _ in plain:
        assert "after stim" in lm.tokenizer.decode(prompt)


def _sentence(lm, prompt):
    gene_ids = {s[0] for s in lm.vocab.ids}
    return [t for t in prompt if t in gene_ids]
