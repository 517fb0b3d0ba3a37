"""What a cell LM writes for given cells: the one path behind every door that generates cells.

:func:`perturbed_sentences` is used by ``sl.tl.perturb(method='llm')``, ``CellLM.predict_perturbation`` and
``sl.jobs.predict_perturbation``; :func:`generated_sentences` by ``sl.tl.generate_cells`` and
``sl.jobs.generate_cells``. Each cell is sampled from its own random stream, seeded by ``seed`` and the cell's
64-bit key (:func:`~sc_llm.core.base.cell_keys.obs_name_keys` of its ``obs`` name for perturbations, its
position for generation), so the same cells give the same sentences whichever door, batch or shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .generation import GenerationResult


def perturbation_prompts(
    lm: Any, control_genes: Sequence[Sequence[str]], cell_types: Sequence[str], perturbation: str, n_genes: int
) -> list[list[int]]:
    """Prompt ids: each control cell's first ``n_genes`` genes, its cell type and the perturbation's name."""
    return [
        lm.prompt_ids("perturbation", list(genes)[:n_genes], cell_type=str(ct), perturbation=perturbation)
        for genes, ct in zip(control_genes, cell_types, strict=True)
    ]


def perturbed_sentences(
    lm: Any,
    control_genes: Sequence[Sequence[str]],
    cell_types: Sequence[str],
    perturbation: str,
    *,
    cell_keys: np.ndarray,
    n_genes: int,
    **sampling: Any,
) -> GenerationResult:
    """The perturbed sentence of every control cell.

    ``sampling``: ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``seed``, ``batch_size``, ``progress``, as
    in :func:`~sc_llm.core.cell_lm.generation.generate_sentences`.
    """
    check_labels(lm.labels, "perturbation", cell_types, perturbation)
    prompts = perturbation_prompts(lm, control_genes, cell_types, perturbation, n_genes)
    return lm.generate(prompts, max_genes=n_genes, cell_keys=np.asarray(cell_keys, dtype=np.uint64), **sampling)


def generated_sentences(
    lm: Any, cell_types: Sequence[str], *, cell_keys: np.ndarray, n_genes: int, **sampling: Any
) -> GenerationResult:
    """A new sentence for every requested cell type (conditional generation; ``sampling`` as above)."""
    check_labels(lm.labels, "conditional_generation", cell_types)
    prompts = [lm.prompt_ids("conditional_generation", cell_type=str(ct), num_genes=n_genes) for ct in cell_types]
    return lm.generate(prompts, max_genes=n_genes, cell_keys=np.asarray(cell_keys, dtype=np.uint64), **sampling)


def _suggest(value: str, known: Sequence[str]) -> str:
    import difflib

    folded = {k.casefold().replace(" ", ""): k for k in known}
    close = [folded[m] for m in difflib.get_close_matches(value.casefold().replace(" ", ""), list(folded), n=1)]
    return f" Did you mean {close[0]!r}?" if close else ""


def check_labels(labels: dict | None, task: str, cell_types: Sequence[str], perturbation: str | None = None) -> None:
    """Refuse a request the model was never trained for: another task, an unknown cell type or perturbation.

    ``labels`` is what :meth:`~sc_llm.core.cell_lm.model.CellLanguageModel.examples` recorded (``None`` for a
    model not trained by sc_llm, e.g. a pretrained C2S-Scale checkpoint: nothing to check against). Names are
    compared exactly; a near miss (case, spaces, a typo) is suggested.
    """
    if labels is None:
        return
    if labels.get("task") != task:
        what = "perturbation" if task == "perturbation" else "conditional generation"
        msg = (
            f"This cell LM was trained for {labels.get('task')!r}, not for {what}: fit one with "
            f"`CellLM.fit(..., task={task!r})`."
        )
        raise ValueError(msg)
    known = list(labels.get("cell_types", []))
    unknown = sorted({str(t) for t in cell_types} - set(known))
    if unknown:
        msg = (
            f"Unknown cell type(s) {unknown[:5]} for this cell LM: it was trained on {known}."
            f"{_suggest(unknown[0], known)} Use the training names, or fit the model on cells of these types."
        )
        raise ValueError(msg)
    if perturbation is not None and perturbation not in labels.get("perturbations", []):
        names = list(labels.get("perturbations", []))
        msg = (
            f"Unknown perturbation {perturbation!r} for this cell LM: it was trained on {names}."
            f"{_suggest(perturbation, names)}"
        )
        raise ValueError(msg)
