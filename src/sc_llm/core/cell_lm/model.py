"""A cell language model: a causal LM, its gene vocabulary, prompt templates and sentence decoder together.

:class:`CellLanguageModel` turns cell sentences (lists of gene names) and metadata into prompt/answer token
ids, generates constrained sentences, fine-tunes through ``sc_llm.core.finetune.engine.finetune_causal_lm``,
and saves/loads itself: ``cell_lm.json`` (base model reference, gene mode and genes, prompt templates, the
fitted sentence decoder, training history) plus either a peft adapter (``adapter/``; the base is re-loaded
from its reference) or full weights and tokenizer (``model/``; models built from scratch or fully fine-tuned).
No AnnData here: ``sl.tl.CellLM`` is the AnnData-facing wrapper.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..llm.loading import load_causal_lm, model_reference
from ..llm.prompts import PromptTemplates
from .gene_vocab import GeneVocab, add_gene_tokens, build_gene_lm
from .generation import GenerationResult, generate_sentences
from .saved import read_saved, write_config


class CellLanguageModel:
    """A causal LM that reads and writes cell sentences (see the module docstring)."""

    def __init__(self, model, tokenizer, vocab: GeneVocab, *, templates=None, base=None, decoder=None):
        self.model, self.tokenizer, self.vocab = model, tokenizer, vocab
        self.templates = templates or PromptTemplates()
        self.base = base  # model_reference() of the pretrained weights, or None for a model built from scratch
        self.decoder = decoder  # a SentenceDecoder (sc_llm.core.sentences.decoding) or None
        self.history: dict[str, Any] | None = None
        # what it was trained on ({'task', 'cell_types', 'perturbations', 'control'}), set by `examples`
        self.labels: dict[str, Any] | None = None

    # ----------------------------------------------------------------------------------------- building
    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike,
        *,
        genes: Sequence[str],
        gene_tokens: bool = False,
        templates=None,
        revision: str | None = None,
        gguf_file: str | None = None,
        trust_remote_code: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> CellLanguageModel:
        """Load a pretrained causal LM; ``gene_tokens=True`` adds one token per gene (mean-of-subword init)."""
        net, tok = load_causal_lm(
            model,
            revision=revision,
            gguf_file=gguf_file,
            trust_remote_code=trust_remote_code,
            device=device,
            dtype=dtype,
        )
        vocab = add_gene_tokens(net, tok, genes) if gene_tokens else GeneVocab.from_tokenizer(tok, genes)
        return cls(net, tok, vocab, templates=templates, base=model_reference(model, gguf_file, revision))

    @classmethod
    def from_scratch(
        cls,
        genes: Sequence[str],
        *,
        cell_types: Sequence[str] = (),
        perturbations: Sequence[str] = (),
        templates=None,
        hidden_size: int = 128,
        num_layers: int = 4,
        num_heads: int = 4,
        max_length: int = 1024,
        seed: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> CellLanguageModel:
        """A small random Llama with one token per gene, its text tokenizer trained on the filled prompts.

        Weights are fp32; ``dtype`` (default: the device's, ``sc_llm.core.base.device.autocast_dtype``) is
        the precision it generates in.
        """
        from ..base.device import autocast_dtype, resolve_device
        from ..llm.loading import set_compute_dtype

        templates = templates or PromptTemplates()
        texts = _template_texts(templates, cell_types, perturbations)
        net, tok, vocab = build_gene_lm(
            genes,
            texts,
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=num_heads,
            max_length=max_length,
            seed=seed,
        )
        dev = resolve_device(device)
        net = set_compute_dtype(net.to(dev).eval(), autocast_dtype(dev, dtype))
        return cls(net, tok, vocab, templates=templates)

    # ----------------------------------------------------------------------------------------- tokens
    def _text_ids(self, text: str, *, first: bool) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=first)["input_ids"] if text else []
        if first and ids and ids[-1] == self.tokenizer.eos_token_id and len(ids) > 1:
            ids = ids[:-1]  # keep a BOS some tokenizers add, never an EOS
        return list(ids)

    def prompt_ids(self, task: str, genes: Sequence[str] | None = None, **slots) -> list[int]:
        """Token ids of a prompt; ``genes`` fill ``{cell_sentence}`` (gene ids, not re-tokenised text)."""
        if genes is not None:
            slots.setdefault("num_genes", len(genes))
        before, after = self.templates.prompt_parts(task, **slots)
        ids = self._text_ids(before.rstrip(" ") if after is not None else before, first=True)
        if after is not None:
            ids += self.vocab.encode(genes or []) + self._text_ids(after, first=False)
        return ids

    def answer_ids(self, genes: Sequence[str]) -> list[int]:
        """Token ids of a sentence answer (the genes, then the closing text; EOS is appended in training)."""
        before, after = self.templates.answer_parts()
        head = self._text_ids(before.strip(), first=False)
        return head + self.vocab.encode(genes) + self._text_ids(after, first=False)

    @property
    def end_ids(self) -> list[int]:
        """The tokens that end a generated sentence (the first token of the answer's closing text, and EOS)."""
        _, after = self.templates.answer_parts()
        close = self._text_ids(after, first=False)[:1]
        return list(dict.fromkeys([*close, self.tokenizer.eos_token_id]))

    # ----------------------------------------------------------------------------------------- generation
    def generate(self, prompts: Sequence[Sequence[int]], *, max_genes: int, **kwargs) -> GenerationResult:
        """``sc_llm.core.cell_lm.generation.generate_sentences`` with this model's vocabulary and end tokens."""
        return generate_sentences(
            self.model, self.tokenizer, prompts, self.vocab, end_ids=self.end_ids, max_genes=max_genes, **kwargs
        )

    # ----------------------------------------------------------------------------------------- training
    def examples(
        self,
        genes: Sequence[Sequence[str]],
        cell_types: Sequence[str],
        *,
        task: str,
        conditions: Sequence[str] | None = None,
        control: str = "control",
        n_genes: int = 100,
        seed: int = 0,
        control_pairs: bool = False,
    ) -> list[tuple[list[int], list[int]]]:
        """Prompt/answer token ids from cells given as gene lists.

        ``task='perturbation'`` pairs every non-``control`` cell (seeded) with a control cell of its type
        (``sc_llm.core.cell_lm.pairs.pair_with_controls``; types without controls are dropped):
        prompt = control sentence, cell type and the cell's condition as perturbation name; answer = its
        sentence. ``control_pairs=True`` adds identity examples: every control cell's sentence as the answer
        to another control cell of its type with ``control`` as the perturbation name
        (``sc_llm.core.cell_lm.pairs.pair_within_controls``), so the model also learns the control cells of
        types without perturbed cells. ``'conditional_generation'``: prompt = cell type, answer = the cell's
        sentence. Records what the model learns from (``self.labels``: the task, every cell type given, the
        perturbation names of the examples, the control), which generation checks its requests against.
        """
        from .pairs import pair_with_controls, pair_within_controls

        genes = [list(g)[:n_genes] for g in genes]
        types = np.asarray(cell_types).astype(str)
        if task == "conditional_generation":
            self.labels = {"task": task, "cell_types": sorted({str(t) for t in types})}
            return [
                (self.prompt_ids("conditional_generation", cell_type=ct, num_genes=n_genes), self.answer_ids(g))
                for ct, g in zip(types, genes, strict=True)
            ]
        if task != "perturbation":
            msg = f"`task` must be 'perturbation' or 'conditional_generation', got {task!r}."
            raise ValueError(msg)
        cond = np.asarray(conditions).astype(str)
        if control not in set(cond):
            msg = f"No control cells: {control!r} is not one of the conditions {sorted(set(cond))}."
            raise ValueError(msg)
        pert, ctrl = pair_with_controls(types, cond == control, seed=seed, missing="drop")
        if control_pairs:
            target, prompt = pair_within_controls(types, cond == control, seed=seed + 1)
            pert, ctrl = np.concatenate([pert, target]), np.concatenate([ctrl, prompt])
        names = sorted(set(cond[pert].tolist()))
        self.labels = {
            "task": task,
            "cell_types": sorted({str(t) for t in types}),
            "perturbations": names,
            "control": control,
        }
        return [
            (
                self.prompt_ids("perturbation", genes[c], cell_type=types[p], perturbation=cond[p]),
                self.answer_ids(genes[p]),
            )
            for p, c in zip(pert, ctrl, strict=True)
        ]

    def fit_examples(self, examples, *, test_size: float = 0.1, seed: int = 0, config=None) -> dict[str, Any]:
        """Hold out a seeded ``test_size`` share for the validation loss and fine-tune on the rest."""
        if not examples:
            msg = "No training examples: no perturbed cell has a control cell of the same cell type."
            raise ValueError(msg)
        from ..base.splits import validation_split

        train_rows, val_rows = validation_split(len(examples), test_size, seed)
        val = [examples[i] for i in val_rows]
        train = [examples[i] for i in train_rows]
        history = self.finetune(train, val or None, config=config)
        self.history = {**history, "n_train": len(train), "n_validation": len(val)}
        return self.history

    def finetune(self, train, validation=None, *, config=None, callback=None) -> dict[str, Any]:
        """Train on ``(prompt_ids, answer_ids)`` pairs with the fine-tuning engine; returns its history.

        In gene-token mode with LoRA, the gene tokens' embedding rows train too (peft trainable tokens).
        """
        from dataclasses import replace

        from ..finetune.config import FinetuneConfig
        from ..finetune.engine import finetune_causal_lm

        default = "full" if self.base is None else "lora"
        if isinstance(config, dict):
            config = FinetuneConfig(**{"method": default, **config})
        config = config or FinetuneConfig(method=default)
        if self.base is None and config.method != "full":
            msg = "A model built from scratch has no pretrained weights to keep frozen: use method='full'."
            raise ValueError(msg)
        if config.method == "lora" and self.vocab.mode == "token" and config.trainable_token_indices is None:
            config = replace(config, trainable_token_indices=tuple(s[0] for s in self.vocab.ids))
        result = finetune_causal_lm(
            self.model,
            train,
            validation,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            config=config,
            callback=callback,
        )
        self.model, self.history = result.model.eval(), result.history
        return result.history

    # ----------------------------------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model folder atomically (a temporary folder renamed into place)."""
        from ..base.atomic import atomic_folder

        path = Path(path).expanduser()
        with atomic_folder(path) as tmp:
            adapter = _is_peft(self.model) and self.base is not None
            self.model.save_pretrained(tmp / ("adapter" if adapter else "model"))
            if not adapter:
                self.tokenizer.save_pretrained(tmp / "model")
            write_config(tmp, self._config(adapter))
        return path

    def _config(self, adapter: bool) -> dict[str, Any]:
        return {
            "weights": "adapter" if adapter else "full",
            "base": self.base,
            "vocab": self.vocab.to_dict(),
            "templates": self.templates.to_dict(),
            "labels": self.labels,
            "decoder": None if self.decoder is None else self.decoder.to_dict(),
            "history": self.history,
        }

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: Any = None, dtype: Any = None, trust_remote_code=False):
        """Load a folder written by :meth:`save` (the base model of an adapter is loaded from its reference)."""
        path = Path(path).expanduser()
        cfg, vocab, decoder = read_saved(path)
        if cfg["weights"] == "full":
            net, tok = load_causal_lm(path / "model", device=device, dtype=dtype)
        else:
            net, tok = _load_adapter(path, cfg, vocab, device, dtype, trust_remote_code)
        out = cls(net, tok, vocab, templates=PromptTemplates.from_dict(cfg["templates"]), base=cfg["base"])
        out.decoder, out.history, out.labels = decoder, cfg.get("history"), cfg.get("labels")
        return out


def _load_adapter(path: Path, cfg: dict, vocab: GeneVocab, device, dtype, trust_remote_code):
    from peft import PeftModel

    base = cfg["base"]
    net, tok = load_causal_lm(
        base["model"],
        revision=base.get("revision"),
        gguf_file=base.get("gguf_file"),
        trust_remote_code=trust_remote_code,
        device=device,
        dtype=dtype,
    )
    if vocab.mode == "token":
        rebuilt = add_gene_tokens(net, tok, vocab.genes)
        if rebuilt.ids != vocab.ids:
            msg = "The base model's tokenizer changed since the adapter was saved: gene token ids differ."
            raise ValueError(msg)
    return PeftModel.from_pretrained(net, path / "adapter").eval(), tok


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config")


def _template_texts(templates: PromptTemplates, cell_types: Sequence[str], perturbations: Sequence[str]) -> list[str]:
    """Filled prompt texts (without genes) to train a from-scratch model's text tokenizer on."""
    texts = []
    for ct in [*cell_types, "cell"]:
        for pert in [*perturbations, "stimulation"]:
            for task in ("conditional_generation", "perturbation", "cell_type_prediction"):
                before, after = templates.prompt_parts(task, num_genes=100, cell_type=ct, perturbation=pert)
                texts.append(before + (after or ""))
        texts.append(templates.cell_type_answer.format(cell_type=ct))
    return texts
