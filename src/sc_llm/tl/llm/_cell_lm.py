"""``sl.tl.CellLM``: a cell language model fitted on an AnnData; it generates and perturbs cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import check_obs, get_gene_names
from ..._utils._expression import read_expression
from ..._utils._logging import logg
from ..._utils._sentences import read_sentence_words
from ..._utils._validation import check_count, check_gene_names, check_sampling, check_seed
from ...core.base.cell_keys import obs_name_keys
from ...core.cell_lm.model import CellLanguageModel
from ...core.sentences.absent import check_absent

if TYPE_CHECKING:
    from anndata import AnnData

TASKS = ("perturbation", "conditional_generation")


class CellLM(CellLanguageModel):
    """A causal language model over cell sentences (C2S-Scale style), fitted and used on AnnData.

    Build one with :meth:`from_pretrained` (hub id, local folder or GGUF file; ``gene_tokens=True`` gives every
    gene one token), :meth:`from_scratch` (a small Llama whose vocabulary is one token per gene) or
    :meth:`load` (a folder written by :meth:`save`). :meth:`fit` fine-tunes it (LoRA or full) on prompt/answer
    pairs built from an AnnData and fits the sentence → expression decoder; :func:`sc_llm.tl.generate_cells`
    and :meth:`predict_perturbation` generate cells. Prompts are :class:`~sc_llm.core.llm.prompts.PromptTemplates`
    (``templates=``), compatible in layout with C2S-Scale models.
    """

    @classmethod
    def from_scratch(cls, genes, **kwargs) -> CellLM:
        """A small random Llama with one token per gene, its genes checked first.

        ``genes`` are refused when empty or holding names with spaces, invisible characters or duplicates; the
        other arguments are those of :meth:`sc_llm.core.cell_lm.model.CellLanguageModel.from_scratch`.
        """
        return super().from_scratch(_checked_genes(genes), **kwargs)

    @classmethod
    def from_pretrained(cls, model, *, genes, **kwargs) -> CellLM:
        """A pretrained causal LM over ``genes``, checked as in :meth:`from_scratch`.

        The other arguments are those of :meth:`sc_llm.core.cell_lm.model.CellLanguageModel.from_pretrained`.
        """
        return super().from_pretrained(model, genes=_checked_genes(genes), **kwargs)

    def fit(
        self,
        adata: AnnData,
        *,
        task: str = "perturbation",
        sentence_key: str = "cell_sentence",
        cell_type_key: str = "cell_type",
        condition_key: str = "condition",
        control: str = "control",
        n_genes: int = 100,
        control_pairs: bool = True,
        layer: str | None = None,
        use_raw: bool | None = None,
        gene_symbols: str | None = None,
        decoder_kind: str = "global",
        decoder_absent: str = "zero",
        test_size: float = 0.1,
        seed: int = 0,
        config: Any = None,
    ) -> CellLM:
        """Fine-tune on ``adata`` and fit the sentence decoder on its expression.

        Parameters
        ----------
        adata
            Cells with sentences in ``.obs[sentence_key]`` (from :func:`sc_llm.pp.cell_sentences`).
        task
            ``'perturbation'``: every non-control cell is paired (seeded) with a control cell of its cell type;
            prompt = control sentence + cell type + ``.obs[condition_key]`` as the perturbation's name, answer =
            the perturbed sentence. ``'conditional_generation'``: prompt = cell type, answer = the cell's sentence.
        sentence_key, cell_type_key, condition_key, control
            Where the sentences, cell types and conditions are, and the control condition's value.
        n_genes
            Genes per sentence (the top ``n_genes``).
        control_pairs
            ``task='perturbation'`` only: also train on identity examples, each control cell's sentence as the
            answer to another control cell of its type with ``control`` as the perturbation's name, so the model
            learns the control cells of every type, including types whose perturbed cells are held out (on Kang
            2018 leave-one-cell-type-out this raised R² of DEG means; see benchmarks/README.md).
        layer, use_raw, gene_symbols
            The expression the sentences were built from (for the decoder), as in :func:`sc_llm.pp.cell_sentences`.
        decoder_kind
            Kind of :class:`~sc_llm.core.sentences.decoding.SentenceDecoder` (``'global'`` is C2S's line).
        decoder_absent
            What genes left out of a generated sentence decode to: ``'zero'`` (C2S) or ``'expected'`` (their
            mean over the training cells whose top genes left them out, for ``task='perturbation'`` the
            perturbed ones; see :func:`sc_llm.tl.fit_sentence_decoder`).
        test_size
            Share of examples held out for the validation loss (early stopping); 0 for none.
        seed
            Seeds the pairing and the split (training is seeded by ``config.seed``).
        config
            A :class:`~sc_llm.core.finetune.config.FinetuneConfig` or a dict of its fields (default: LoRA for
            pretrained models, full training for models from scratch).

        Returns
        -------
        ``self``, trained; ``self.history`` holds the losses, ``self.decoder`` the fitted decoder.
        """
        if task not in TASKS:
            msg = f"`task` must be one of {TASKS}, got {task!r}."
            raise ValueError(msg)
        check_absent(decoder_absent, "decoder_absent")
        n_genes, seed = check_count(n_genes, "n_genes"), check_seed(seed)
        start = logg.info(f"fitting cell LM ({task})")
        genes = read_sentence_words(adata, sentence_key, n_genes=n_genes, empty="error")
        cell_types = check_obs(adata, cell_type_key).astype(str).to_numpy()
        conditions = check_obs(adata, condition_key).astype(str).to_numpy() if task == "perturbation" else None
        examples = self.examples(
            genes,
            cell_types,
            task=task,
            conditions=conditions,
            control=control,
            n_genes=n_genes,
            seed=seed,
            control_pairs=control_pairs,
        )
        if not examples:
            msg = "No training examples: no perturbed cell has a control cell of the same cell type."
            raise ValueError(msg)
        # a perturbation model writes perturbed cells: their absent values come from the perturbed training cells
        rows = None if conditions is None else np.flatnonzero(conditions != str(control))
        absent = (decoder_absent, rows)
        decoder = _fit_decoder(adata, genes, (layer, use_raw, gene_symbols), decoder_kind, absent, seed)
        self.fit_examples(examples, test_size=test_size, seed=seed, config=config)
        self.decoder = decoder
        self.history = {**self.history, "task": task, "n_genes": n_genes}
        logg.info("    finished", time=start)
        return self

    def predict_perturbation(
        self,
        adata: AnnData,
        *,
        perturbation: str,
        sentence_key: str = "cell_sentence",
        cell_type_key: str = "cell_type",
        n_genes: int = 100,
        do_sample: bool = False,
        temperature: float = 1.0,
        seed: int = 0,
        batch_size: int = 16,
        dtype: Any = None,
        progress: bool = True,
    ) -> AnnData:
        """Predict every cell of ``adata`` (controls) after ``perturbation``: a new AnnData of predicted cells.

        Parameters
        ----------
        adata
            Control cells with sentences in ``.obs[sentence_key]`` and cell types in ``.obs[cell_type_key]``.
        perturbation
            The perturbation's name, as in training (a value of the training ``condition_key``).
        sentence_key, cell_type_key, n_genes
            As in :meth:`fit`.
        do_sample, temperature, seed, batch_size, progress
            Generation settings (greedy by default). Sampled sentences derive from ``seed`` and each cell's
            ``obs`` name, so a cell gets the same sentence in any subset, order or batch.
        dtype
            Compute precision of generation (``None``: the model's, by default bf16 on CUDA and on CPUs with
            native bf16, else fp32; see :func:`sc_llm.tl.embed`). Recorded in ``.uns['cell_lm']['params']``.

        Returns
        -------
        AnnData with ``.obs['cell_sentence']``, ``.obs[cell_type_key]``, ``.obs['control_cell']``, ``.X`` the
        decoded expression over the model's genes, ``.uns['cell_lm']`` the parameters and the valid-gene share.
        """
        from ...core.cell_lm.predict import perturbed_sentences

        check_sampling(n_genes=n_genes, temperature=temperature, seed=seed, batch_size=batch_size)
        genes = read_sentence_words(adata, sentence_key, n_genes=n_genes)
        cell_types = check_obs(adata, cell_type_key).astype(str).to_numpy()
        sampling = {"do_sample": do_sample, "temperature": temperature, "seed": seed}
        res = perturbed_sentences(
            self,
            genes,
            cell_types,
            perturbation,
            cell_keys=obs_name_keys(adata.obs_names),
            n_genes=n_genes,
            batch_size=batch_size,
            progress=progress,
            dtype=dtype,
            **sampling,
        )
        obs = pd.DataFrame(
            {cell_type_key: pd.Categorical(cell_types), "control_cell": np.asarray(adata.obs_names)},
            index=[f"pred_{i}" for i in range(len(genes))],
        )
        params = {
            "perturbation": perturbation,
            "n_genes": n_genes,
            "do_sample": do_sample,
            "temperature": temperature,
            "seed": seed,
        }
        return cells_anndata(self, res, obs, params)


def _checked_genes(genes) -> list[str]:
    names = list(genes) if not isinstance(genes, str) else [genes]
    if not names:
        msg = "`genes` is empty: a cell LM needs the genes its sentences may hold, e.g. `list(adata.var_names)`."
        raise ValueError(msg)
    return list(check_gene_names(np.asarray(names, dtype=object), "`genes`"))


def cells_anndata(model: CellLanguageModel, res, obs: pd.DataFrame, params: dict) -> AnnData:
    """Generated sentences → AnnData: sentences in ``.obs``, decoded expression in ``.X``, params in ``.uns``."""
    import anndata as ad
    from scipy import sparse

    sentences = [" ".join(g) for g in res.genes]
    obs = obs.assign(cell_sentence=sentences, n_valid_genes=res.n_valid, n_words=res.n_words)
    var = pd.DataFrame(index=pd.Index(model.vocab.genes, dtype=str))
    if model.decoder is not None:
        X, _ = model.decoder.decode(sentences, model.vocab.genes)
    else:
        logg.warning("the model has no fitted sentence decoder: `.X` is all zeros; call `fit` or set `.decoder`.")
        X = sparse.csr_matrix((len(sentences), len(model.vocab.genes)), dtype=np.float32)
    uns = {
        "params": {**params, "base": _plain(model.base), "gene_mode": model.vocab.mode, "dtype": res.dtype},
        "valid_gene_share": res.valid_share,
        "tokens_per_second": res.tokens_per_second,
    }
    return ad.AnnData(X=sparse.csr_matrix(X, dtype=np.float32), obs=obs, var=var, uns={"cell_lm": uns})


def _plain(base: dict | None) -> dict:
    return {k: ("" if v is None else v) for k, v in (base or {"model": "from_scratch"}).items()}


def _fit_decoder(adata, genes: Sequence[list[str]], source: tuple, kind: str, absent: tuple, seed: int):
    from ..decoding._fit import fit_decoder_arrays

    layer, use_raw, gene_symbols = source
    absent, absent_rows = absent
    X, var, _ = read_expression(adata, layer=layer, use_raw=use_raw)
    names = get_gene_names(var, gene_symbols)
    sentences = [" ".join(g) for g in genes]
    return fit_decoder_arrays(
        X,
        np.asarray(names, dtype=object),
        sentences,
        kind=kind,
        max_rank=1000,
        shrinkage=20.0,
        test_size=0.2,
        seed=seed,
        absent=absent,
        absent_rows=absent_rows,
    )
