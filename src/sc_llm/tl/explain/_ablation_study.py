"""``sl.tl.ablation_study``: embed ablated cell sentences and score each ablation (10-NN, k-means ARI)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import check_obs, get_modality, h5ad_params
from ..._utils._docs import doc_params
from ..._utils._logging import logg
from ..._utils._readers import read_labels
from ..._utils._sentences import read_sentences, split_sentence
from ...core.base.atomic import atomic_file
from ...core.explain.ablation import MODES, NEEDS_TOKENIZER, ablate
from ...core.knn import knn_vote
from ...core.text.gene_tokens import n_in_context
from ...metrics import classification_scores, kmeans_ari

if TYPE_CHECKING:
    from anndata import AnnData

    from ...core.text.encoder import TextEncoder

#: The first paper's ablations (Table "ablations": Ember-V1 on Aorta), plus the shortened sentences.
PAPER_ABLATIONS: dict[str, dict[str, Any]] = {
    "baseline": {"mode": None},
    "hash": {"mode": "hash"},
    "shuffle_all": {"mode": "shuffle_all"},
    "shuffle_in_context": {"mode": "shuffle_in_context"},
    "shuffle_top10_in_context": {"mode": "shuffle_top_in_context", "fraction": 0.1},
    "hash_shuffle_in_context": {"mode": "hash_shuffle_in_context"},
    "random_hash": {"mode": "random_hash"},
    "shorten_10": {"mode": "shorten", "fraction": 0.1},
    "shorten_20": {"mode": "shorten", "fraction": 0.2},
    "shorten_50": {"mode": "shorten", "fraction": 0.5},
}
METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "ari")


def resolve_ablations(ablations: Any, obs_columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Normalise ``ablations`` to ``{name: {'mode': ..., 'fraction': ...} or {'sentence_key': ...}}``."""
    if ablations is None:
        return {k: dict(v) for k, v in PAPER_ABLATIONS.items()}
    items = ablations.items() if isinstance(ablations, Mapping) else ((a, a) for a in ablations)
    if isinstance(ablations, str):
        msg = f"`ablations` must be a list or a mapping, e.g. [{ablations!r}], not a string."
        raise TypeError(msg)
    out: dict[str, dict[str, Any]] = {}
    for name, spec in items:
        if isinstance(spec, Mapping):
            spec = dict(spec)
            mode = spec.get("mode")
            if "sentence_key" not in spec and mode is not None and mode not in MODES:
                msg = f"Ablation {name!r}: unknown mode {mode!r}; choose one of {MODES} (or None for the baseline)."
                raise ValueError(msg)
            if set(spec) - {"mode", "fraction", "sentence_key"}:
                msg = f"Ablation {name!r}: unknown settings {sorted(set(spec) - {'mode', 'fraction', 'sentence_key'})}."
                raise ValueError(msg)
        elif spec in PAPER_ABLATIONS:
            spec = dict(PAPER_ABLATIONS[spec])
        elif spec in obs_columns:
            spec = {"sentence_key": spec}
        elif spec in MODES:
            spec = {"mode": spec}
        else:
            msg = (
                f"Ablation {spec!r} is neither one of {list(PAPER_ABLATIONS)}, a mode of {MODES}, nor an `.obs` "
                "column of sentences (e.g. written by `sl.pp.ablate_sentences`)."
            )
            raise ValueError(msg)
        out[str(name)] = spec
    if not out:
        msg = "`ablations` is empty."
        raise ValueError(msg)
    return out


def cached_encode(enc: TextEncoder, sentences: list[str], cache_dir: Path | None, batch_size: int, progress: bool):
    """Embed ``sentences``; with ``cache_dir``, reuse an embedding of the same encoder settings and sentences."""
    if cache_dir is None:
        return enc.encode(sentences, batch_size=batch_size, progress=progress)[0]
    h = hashlib.sha256(repr(sorted(enc.params().items(), key=str)).encode())
    h.update("\n".join(sentences).encode())
    path = cache_dir / f"emb_{h.hexdigest()[:24]}.npy"
    if path.is_file():
        try:
            X = np.load(path, allow_pickle=False)
            if X.shape == (len(sentences), enc.dim) and np.isfinite(X).all():
                return X
            problem = f"shape {X.shape} instead of {(len(sentences), enc.dim)}, or non-finite values"
        except (OSError, ValueError, EOFError) as e:  # truncated or not a .npy file
            problem = f"it cannot be read ({e})"
        warnings.warn(f"Ignoring the damaged cache file {str(path)!r}: {problem}; recomputing it.", stacklevel=3)
    X = enc.encode(sentences, batch_size=batch_size, progress=progress)[0]
    with atomic_file(path) as tmp, tmp.open("wb") as f:  # an interrupted run never leaves a partial cache file
        np.save(f, X)
    return X


def split_rows(
    labels: pd.Series, split_key: pd.Series | None, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split labelled cells into ``(reference, test)`` rows: by ``split_key`` or stratified at random."""
    has = labels.notna().to_numpy()
    if split_key is not None:
        values = split_key.astype(str).to_numpy()
        ref, test = np.flatnonzero(has & (values == "train")), np.flatnonzero(has & (values == "test"))
        if len(ref) == 0 or len(test) == 0:
            msg = "`split_key` must mark labelled cells 'train' (the kNN reference) and 'test' (scored)."
            raise ValueError(msg)
        return ref, test
    from ...core.base.splits import stratified_split

    rows = np.flatnonzero(has)
    counts = labels[has].astype(str).value_counts()
    if (small := counts[counts < 2]).size:
        msg = (
            f"Labels {small.index.tolist()} have a single cell, too few for a stratified split: drop those cells "
            "(set their label to NaN) or pass `split_key=`."
        )
        raise ValueError(msg)
    codes = pd.Categorical(labels[has].astype(str)).codes
    ref, test = stratified_split(codes, test_size, seed)
    return rows[ref], rows[test]


@doc_params()
def ablation_study(
    adata: AnnData,
    *,
    model: Any,
    label_key: str,
    ablations: Sequence[str] | Mapping[str, Any] | None = None,
    sentence_key: str = "cell_sentence",
    k: int = 10,
    test_size: float = 0.2,
    split_key: str | None = None,
    seed: int = 0,
    batch_size: int = 32,
    max_length: int | None = None,
    prefix: str | None = None,
    revision: str | None = None,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    mod: str | None = None,
    progress: bool = True,
    key_added: str = "ablation_study",
    copy: bool = False,
) -> AnnData | None:
    """Embed each ablation of the cell sentences and score it with 10-NN classification and k-means ARI.

    This reproduces the first paper's ablation table on your data: for every ablation (see
    :func:`sc_llm.pp.ablate_sentences`), the ablated sentences are embedded with the frozen text encoder,
    test cells are labelled by a cosine ``k``-NN vote among the reference cells of a fixed split, and k-means
    (as many clusters as labels) is scored against the labels on all labelled cells.

    Parameters
    ----------
    adata
        Annotated data matrix with cell sentences and labels (or a MuData, see ``mod``).
    model
        Text encoder (hub id, local folder or :class:`~sc_llm.tl.TextEncoder`).
    label_key
        ``.obs`` column with the cell labels.
    ablations
        Default: the paper's suite, ``baseline`` (the sentences as they are), ``hash``, ``shuffle_all``,
        ``shuffle_in_context``, ``shuffle_top10_in_context``, ``hash_shuffle_in_context``, ``random_hash``,
        ``shorten_10``, ``shorten_20``, ``shorten_50``. A list may name these, modes of
        :func:`sc_llm.pp.ablate_sentences`, or ``.obs`` columns of already ablated sentences; a mapping gives
        ``{name: {'mode': ..., 'fraction': ...}}`` or ``{name: {'sentence_key': column}}``.
    sentence_key
        ``.obs`` column with the original cell sentences.
    k
        Neighbours of the kNN vote.
    test_size
        Share of each label's cells held out as test cells (stratified; ignored with ``split_key``).
    split_key
        ``.obs`` column marking cells ``'train'`` (reference) and ``'test'``; other values are left out of kNN.
    seed
        Seed of the split, the random ablations and k-means.
    batch_size, max_length, prefix, revision, device
        As in :func:`sc_llm.tl.embed`.
    cache_dir
        Folder where embeddings are kept (keyed by the encoder settings and the sentences), so that a rerun
        only embeds what changed.
    mod
        Modality to use when ``adata`` is a MuData (default ``'rna'``); results go into that modality.
    progress
        Show progress bars.
    key_added
        ``.uns`` key of the results.
    {copy}

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets:

    ``adata.uns[key_added]['results']`` : :class:`pandas.DataFrame`
        One row per ablation (index: its name) with ``mode``, ``fraction``, ``accuracy``, ``precision_macro``,
        ``recall_macro``, ``f1_macro`` (kNN on the test cells), ``ari`` (k-means) and ``mean_in_context``
        (mean genes in the encoder's context after ablation).
    ``adata.uns[key_added]['params']`` : :class:`dict`
        ``label_key``, ``sentence_key``, ``k``, ``test_size``, ``split_key``, ``seed``, ``n_reference``,
        ``n_test``, ``ablations`` (the resolved settings) and the encoder settings.
    """
    if k < 1 or batch_size < 1:
        msg = f"`k` and `batch_size` must be positive, got k={k}, batch_size={batch_size}."
        raise ValueError(msg)
    if split_key is None and not 0 < test_size < 1:
        msg = f"`test_size` must be in (0, 1), got {test_size}."
        raise ValueError(msg)
    target = get_modality(adata, mod)
    specs = resolve_ablations(ablations, list(target.obs.columns))
    labels = read_labels(target, label_key)
    base = read_sentences(target, sentence_key)
    for name, spec in specs.items():
        if "sentence_key" in spec:
            read_sentences(target, spec["sentence_key"])
        elif spec.get("mode") is not None and not 0 < spec.get("fraction", 0.1) <= 1:
            msg = f"Ablation {name!r}: `fraction` must be in (0, 1]."
            raise ValueError(msg)
    ref, test = split_rows(labels, check_obs(target, split_key) if split_key else None, test_size, seed)

    from ...core.text.encoder import as_text_encoder

    enc = as_text_encoder(model, revision=revision, device=device, max_length=max_length, prefix=prefix)
    cache = None if cache_dir is None else Path(cache_dir)
    start = logg.info(f"ablation study: {len(specs)} ablations of {len(base)} cell sentences with {enc.model_id!r}")
    words = [split_sentence(s) for s in base]
    rows = []
    for name, spec in specs.items():
        ablated = ablated_words(target, words, spec, enc.genes, seed)
        logg.info(f"    {name}: embedding")
        X = cached_encode(enc, [" ".join(w) for w in ablated], cache, batch_size, progress)
        mode = spec.get("mode") or ("column" if "sentence_key" in spec else "none")
        rows.append(
            {
                "ablation": name,
                "mode": mode,
                "fraction": spec.get("fraction", np.nan),
                **score_embedding(X, labels, ref, test, k=k, seed=seed),
                "mean_in_context": float(n_in_context(enc.genes, ablated).mean()) if ablated else 0.0,
            }
        )
    results = pd.DataFrame(rows).set_index("ablation")

    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod)
    target.uns[key_added] = {
        "results": results,
        "params": h5ad_params(
            {
                "label_key": label_key,
                "sentence_key": sentence_key,
                "k": k,
                "test_size": test_size,
                "split_key": split_key,
                "seed": seed,
                "n_reference": len(ref),
                "n_test": len(test),
                "ablations": {n: {kk: v for kk, v in s.items() if v is not None} for n, s in specs.items()},
                "encoder": {kk: v for kk, v in enc.params().items() if v is not None},
            }
        ),
    }
    logg.info("    finished", time=start, deep=f"added\n    '{key_added}', ablation results (adata.uns)")
    return adata if copy else None


def ablated_words(target: AnnData, words: list[list[str]], spec: Mapping[str, Any], genes: Any, seed: int):
    """The gene words of one ablation: read from an ``.obs`` column, the original ones, or ablated here."""
    mode = spec.get("mode")
    if "sentence_key" in spec:
        return [split_sentence(s) for s in read_sentences(target, spec["sentence_key"])]
    if mode is None:
        return words
    rng = np.random.default_rng(seed)  # as `sl.pp.ablate_sentences(seed=seed)`
    genes = genes if mode in NEEDS_TOKENIZER else None
    return ablate(words, mode, rng=rng, genes=genes, fraction=spec.get("fraction", 0.1))[0]


def score_embedding(
    X: np.ndarray, labels: pd.Series, ref: np.ndarray, test: np.ndarray, *, k: int, seed: int
) -> dict[str, float]:
    """The kernel of :func:`ablation_study`: kNN scores of ``test`` from ``ref`` rows, k-means ARI of labelled rows."""
    labelled_rows = np.flatnonzero(labels.notna().to_numpy())
    truth = labels.astype(str).to_numpy()
    categories = np.unique(truth[ref])
    ref_codes = np.searchsorted(categories, truth[ref])
    codes, _ = knn_vote(X[ref], ref_codes, X[test], k, len(categories))
    scores = classification_scores(truth[test], categories[codes[:, 0]])
    ari = kmeans_ari(X[labelled_rows], truth[labelled_rows], seed=seed)
    return {**{m: scores[m] for m in METRICS[:4]}, "ari": ari}
