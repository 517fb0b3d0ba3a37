"""Prompt templates for LLM cell-type choice, kept as data (``str.format`` fields, no code).

``RERANK`` follows the first paper's generative fusion (its Figure 5, reworded): the cell's top genes, the
three candidate types from a 10-NN vote in the order of the vote, "pick one; if unsure, keep the first".
``ANNOTATE`` is the cell-type prediction prompt of :class:`~sc_llm.core.llm.prompts.PromptTemplates` (C2S-Scale's
layout, the same text and answer form the cell-LM fine-tuning uses), so a model fine-tuned with sc_llm is asked
exactly as it was trained; ``ANNOTATE_CHOICES`` adds the allowed types for endpoints, which answer in free text.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field

from .prompts import PromptTemplates


@dataclass(frozen=True)
class PromptTemplate:
    """A user message with ``str.format`` fields, the cue ending a plain prompt, and the answer's form.

    Fields: ``{sentence}`` (space-separated genes), ``{n_genes}``, ``{organism}`` and, for choices,
    ``{candidates}`` (a numbered list, one per line) and ``{first}`` (the first candidate). ``cue`` ends the
    prompt when the model has no chat template; ``answer`` (with ``{label}``) is the text scored for each
    candidate after a plain prompt (after a chat template, without its leading spaces).
    """

    name: str
    user: str
    system: str | None = None
    cue: str = "Answer:"
    answer: str = " {label}"
    required: tuple[str, ...] = field(default=("sentence",))

    def __post_init__(self):
        fields = {f for _, f, _, _ in string.Formatter().parse(self.user) if f}
        unknown = fields - {"sentence", "n_genes", "organism", "candidates", "first"}
        missing = set(self.required) - fields
        if unknown or missing:
            msg = (
                f"Prompt template {self.name!r}: unknown fields {sorted(unknown)} / missing fields {sorted(missing)}; "
                "use {sentence}, {n_genes}, {organism}, {candidates}, {first}."
            )
            raise ValueError(msg)

    def render(self, sentence: str, *, candidates: Sequence[str] = (), organism: str = "Homo sapiens") -> str:
        """The user message for one cell."""
        genes = sentence.split()
        listed = "\n".join(f"{i + 1}. {c}" for i, c in enumerate(candidates))
        return self.user.format(
            sentence=" ".join(genes),
            n_genes=len(genes),
            organism=organism,
            candidates=listed,
            first=candidates[0] if candidates else "",
        )

    def messages(self, sentence: str, *, candidates: Sequence[str] = (), organism: str = "Homo sapiens") -> list[dict]:
        """Chat messages (``system`` first when set) for one cell."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        return [*out, {"role": "user", "content": self.render(sentence, candidates=candidates, organism=organism)}]

    def to_dict(self) -> dict:
        """Plain-data form recorded in ``.uns``."""
        return {
            "name": self.name,
            "system": self.system or "",
            "user": self.user,
            "cue": self.cue,
            "answer": self.answer,
        }

    def answer_text(self, label: str, *, chat: bool) -> str:
        """The text scored for ``label``."""
        text = self.answer.format(label=label)
        return text.lstrip() if chat else text


RERANK = PromptTemplate(
    name="rerank_top3",
    user=(
        "Here are the {n_genes} most highly expressed genes of a {organism} cell, in descending order of "
        "expression:\n{sentence}\n\n"
        "A reference-based classifier ranked these cell types as the most likely, most likely first:\n"
        "{candidates}\n\n"
        "Which one of these cell types is this cell? If you are unsure, answer with the first one ({first}). "
        "Answer with the cell type name only, exactly as written above."
    ),
    required=("sentence", "candidates"),
)

_C2S = PromptTemplates()
_C2S_USER = _C2S.cell_type_prediction.replace("{num_genes}", "{n_genes}").replace("{cell_sentence}", "{sentence}")

ANNOTATE = PromptTemplate(
    name="c2s_cell_type_prediction",
    user=_C2S_USER,
    cue="",
    answer=_C2S.cell_type_answer.replace("{cell_type}", "{label}"),
)

ANNOTATE_CHOICES = PromptTemplate(
    name="c2s_cell_type_prediction_choices",
    user=_C2S_USER.rsplit("\n", 1)[0]
    + "\nChoose one of these cell types and answer with its name only:\n{candidates}\nCell type:",
    cue="",
    answer=ANNOTATE.answer,
    required=("sentence", "candidates"),
)


def as_template(template: PromptTemplate | str | None, default: PromptTemplate, *, name: str) -> PromptTemplate:
    """``None`` → ``default``; a string → a template with the default's required fields."""
    if template is None:
        return default
    if isinstance(template, PromptTemplate):
        return template
    return PromptTemplate(name=name, user=template, cue=default.cue, answer=default.answer, required=default.required)
