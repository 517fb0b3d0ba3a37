"""Prompt templates for cell language models, as data.

Each task is a pair of templates: the *prompt* (what the model reads) and the *answer* (what it learns to
write, and what generation produces). The layout follows the prompts C2S-Scale models were trained on —
an instruction naming the number of genes and the organism, the cell sentence after a ``Cell sentence:``
style cue, and an answer that is the gene list (or cell type) ended by a period — so a downloaded C2S model
sees the structure it knows. The wording here is sc_llm's own; pass the exact strings of a model's card
(``PromptTemplates(conditional_generation=...)``) to match a published model word for word.

Slots (``str.format`` fields):

``{num_genes}``
    Number of genes in the sentence(s).
``{organism}``
    e.g. ``'Homo sapiens'``.
``{cell_type}``
    The cell type (conditional generation, perturbation; the answer of cell-type prediction).
``{perturbation}``
    The perturbation's name (e.g. ``'IFN-beta stimulation'``).
``{cell_sentence}``
    Space-separated gene names. In the perturbation prompt it is the *control* cell's sentence; in answers
    it is the generated sentence.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, fields

SENTENCE_SLOT = "{cell_sentence}"

TASKS = ("cell_type_prediction", "conditional_generation", "perturbation")
SLOTS = {
    "cell_type_prediction": {"num_genes", "organism", "cell_sentence"},
    "conditional_generation": {"num_genes", "organism", "cell_type"},
    "perturbation": {"num_genes", "organism", "cell_type", "perturbation", "cell_sentence"},
}


@dataclass(frozen=True)
class PromptTemplates:
    """Prompt and answer templates of the three tasks (see the module docstring for the slots).

    Parameters
    ----------
    cell_type_prediction
        Prompt of cell-type prediction; its answer is ``cell_type_answer``.
    conditional_generation
        Prompt of cell generation conditioned on a cell type; its answer is ``sentence_answer``.
    perturbation
        Prompt of perturbation response: the control cell's sentence and the perturbation; its answer is
        ``sentence_answer`` holding the perturbed cell's sentence.
    sentence_answer
        Answer of the generative tasks. Must hold ``{cell_sentence}`` once; text after it ends the sentence.
    cell_type_answer
        Answer of cell-type prediction.
    organism
        Filled into ``{organism}``.
    """

    cell_type_prediction: str = (
        "Here are the {num_genes} most expressed genes of a {organism} cell, in descending order of expression. "
        "Name the cell type of this cell.\nCell sentence: {cell_sentence}.\nCell type:"
    )
    conditional_generation: str = (
        "List the {num_genes} most expressed genes, in descending order of expression, of a {organism} "
        "{cell_type} cell.\nCell sentence:"
    )
    perturbation: str = (
        "Here are the {num_genes} most expressed genes of a {organism} {cell_type} control cell, in descending "
        "order of expression. List its {num_genes} most expressed genes after {perturbation}.\n"
        "Control cell sentence: {cell_sentence}.\nPerturbed cell sentence:"
    )
    sentence_answer: str = " {cell_sentence}."
    cell_type_answer: str = " {cell_type}."
    organism: str = "Homo sapiens"

    def __post_init__(self):
        for task in TASKS:
            used = _fields(getattr(self, task))
            unknown = used - SLOTS[task]
            if unknown:
                msg = f"Template {task!r} uses unknown slots {sorted(unknown)}; allowed: {sorted(SLOTS[task])}."
                raise ValueError(msg)
        if _fields(self.sentence_answer) != {"cell_sentence"} or self.sentence_answer.count(SENTENCE_SLOT) != 1:
            msg = "`sentence_answer` must contain '{cell_sentence}' exactly once and no other slot."
            raise ValueError(msg)
        if "cell_sentence" in _fields(self.perturbation) and self.perturbation.count(SENTENCE_SLOT) != 1:
            msg = "`perturbation` must contain '{cell_sentence}' (the control cell) at most once."
            raise ValueError(msg)

    def prompt_parts(self, task: str, **slots) -> tuple[str, str | None]:
        """The prompt split around ``{cell_sentence}``: ``(before, after)``; ``after`` is None without one.

        Splitting lets the sentence be tokenised gene by gene (text mode) or as gene tokens.
        """
        if task not in TASKS:
            msg = f"Unknown task {task!r}; one of {TASKS}."
            raise ValueError(msg)
        template = getattr(self, task)
        values = {"organism": self.organism, **slots}
        missing = (_fields(template) - {"cell_sentence"}) - set(values)
        if missing:
            msg = f"Task {task!r} needs values for {sorted(missing)}."
            raise ValueError(msg)
        if SENTENCE_SLOT not in template:
            return template.format(**values), None
        before, after = template.split(SENTENCE_SLOT)
        return before.format(**values), after.format(**values)

    def answer_parts(self) -> tuple[str, str]:
        """``sentence_answer`` split around the sentence: text before the genes, and the end-of-sentence text."""
        before, after = self.sentence_answer.split(SENTENCE_SLOT)
        return before, after

    def to_dict(self) -> dict:
        """JSON-able form (what ``CellLM.save`` writes)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PromptTemplates:
        """Inverse of :meth:`to_dict`; unknown keys raise."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            msg = f"Unknown prompt template fields {sorted(unknown)}; known: {sorted(known)}."
            raise ValueError(msg)
        return cls(**d)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
