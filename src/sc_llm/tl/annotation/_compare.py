"""``sl.tl.compare_annotators``: the first paper's comparison table (fusion vs single-representation MLPs vs kNN)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..._utils._anndata import get_modality, h5ad_params
from ..._utils._docs import doc_params
from ..._utils._logging import logg
from ..._utils._readers import check_class_sizes, labelled, read_labels, read_reps
from ..._utils._validation import check_seeds
from ...core.fusion.defaults import TRAIN_DEFAULTS
from ...core.knn import knn_vote
from ...metrics import classification_scores, expected_calibration_error
from ._scmpt_model import ScMPT

if TYPE_CHECKING:
    from anndata import AnnData

SCORES = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "ece")


def summarize_comparison(
    table: pd.DataFrame, scores: Sequence[str] = ("accuracy", "f1_macro", "ece"), digits: int = 3
) -> pd.DataFrame:
    """``'mean ± sd'`` strings of a :func:`compare_annotators` table, for printing (stored as ``'summary'``)."""
    return pd.DataFrame(
        {
            s: [f"{m:.{digits}f} ± {d:.{digits}f}" for m, d in zip(table[f"{s}_mean"], table[f"{s}_sd"], strict=True)]
            for s in scores
        },
        index=table.index,
    )


@doc_params()
def compare_annotators(
    adata: AnnData,
    *,
    label_key: str,
    use_reps: Sequence[str] = ("X_scgpt", "X_ember"),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    test_size: float = 0.2,
    k: int = 10,
    ensemble_controls: bool | Sequence[str] = False,
    mod: str | None = None,
    device: str | None = None,
    progress: bool = True,
    key_added: str = "scmpt_comparison",
    copy: bool = False,
    **train: Any,
) -> AnnData | None:
    """Compare scMPT fusion with each representation's MLP and kNN over repeated stratified splits.

    For every seed the labelled cells are split (stratified) into training and test cells; on the same split
    are trained and scored: the fusion of all ``use_reps`` (:class:`sc_llm.tl.ScMPT`), an MLP on each single
    representation (the same network with one input, as the paper's baselines), and cosine ``k``-NN voting
    on each representation (:func:`sc_llm.tl.knn_annotate`'s method) with the training cells as reference.
    Test-set accuracy, macro precision/recall/F1 and the expected calibration error of the confidences
    (top-label, 15 bins; for kNN the vote fraction) are summarised as mean ± sd over the seeds. Any
    ``.obs`` column can be the label: cell type, or a phenotype such as disease state or stimulation.

    Parameters
    ----------
    adata
        Cells with the representations in ``.obsm`` and labels in ``.obs[label_key]`` (NaN = ignored); or a
        MuData with modality-qualified keys (``'rna:X_scgpt'``).
    label_key
        ``.obs`` column with the true labels.
    use_reps
        ``.obsm`` keys of the representations (≥ 1; with one, the fusion row is that representation's MLP).
    seeds
        One train/test split and training run per seed.
    test_size
        Fraction of every class held out for testing; every class needs ≥ 3 labelled cells.
    k
        Neighbours of the kNN baseline.
    ensemble_controls
        Also score, for each representation (``True``: every key of ``use_reps``; or a list of keys), the
        first fusion trained on as many copies of that one representation as ``use_reps`` has keys: rows
        ``'ensemble (a)'``. Same members, cross-fitting, expert weighting and training budget as the fusion,
        but no second representation, so ``scMPT − ensemble`` is the gain from combining representations
        and ``ensemble − MLP`` the gain from ensembling alone.
    mod
        On a MuData: the modality to work in (its ``.obsm`` keys and ``.obs`` labels; results go to it).
        ``None``: the MuData itself, with modality-qualified keys (``'rna:X_scgpt'``) to compare across
        modalities.
    device
        Torch device of the MLPs; ``None`` picks CUDA, then MPS, then CPU.
    progress
        Show a progress bar over runs.
    key_added
        ``.uns`` key of the results.
    {copy}
    **train
        Training arguments of :meth:`sc_llm.tl.ScMPT.fit` (``hidden``, ``dropout``, ``validation_fraction``,
        ``class_weight``, ``max_epochs``, ``patience``, ``batch_size``, ``lr``, ``weight_decay``), shared by
        the fusion and the single-representation MLPs. ``seed`` comes from ``seeds``. ``fusion`` may also
        list several fusions (e.g. ``['stacked', 'concat']``): one scMPT row each, the first named
        ``'scMPT (a + b)'`` and the others ``'scMPT[<fusion>] (a + b)'``; the single-representation MLPs are
        plain networks whatever the fusion.

    Returns
    -------
    Returns ``None`` (or a copy if ``copy=True``) and sets ``adata.uns[key_added]``, a :class:`dict` with:

    ``'table'`` : :class:`pandas.DataFrame`
        One row per method (``'scMPT (a + b)'``, ``'MLP (a)'``, ``'kNN (a)'`` …) with ``<score>_mean`` and
        ``<score>_sd`` (sample sd over seeds) for accuracy, precision_macro, recall_macro, f1_macro, ece
        (expected calibration error), and ``n_test``.
    ``'summary'`` : :class:`pandas.DataFrame`
        The same rows with ``'mean ± sd'`` strings of accuracy, macro-F1 and ECE, for printing.
    ``'per_seed'`` : :class:`pandas.DataFrame`
        ``method``, ``seed`` and the five scores of every run.
    ``'params'`` : :class:`dict`
        ``label_key``, ``use_reps``, ``seeds``, ``test_size``, ``k`` and the training arguments.
    """
    seeds = _check_arguments(seeds, test_size, k, train)
    use_reps = [use_reps] if isinstance(use_reps, str) else list(use_reps)
    target = get_modality(adata, mod, whole_mudata=True)
    reps = read_reps(target, use_reps)
    has, labels = labelled(read_labels(target, label_key), f"obs[{label_key!r}]")
    reps = [X[has] for X in reps]
    check_class_sizes(labels, 3, "a stratified test split plus a validation split")

    fusions = _fusions(train)
    controls = _controls(ensemble_controls, use_reps)
    methods = comparison_methods(use_reps, fusions, controls)
    start = logg.info(f"comparing {len(methods)} annotators on {use_reps} over {len(seeds)} seeds")
    per_seed = run_comparison(
        reps,
        labels,
        methods,
        use_reps=use_reps,
        label_key=label_key,
        seeds=seeds,
        test_size=test_size,
        k=k,
        device=device,
        progress=progress,
        train=train,
    )
    table = comparison_table(per_seed, [m[0] for m in methods], len(seeds))

    adata = adata.copy() if copy else adata
    target = get_modality(adata, mod, whole_mudata=True)
    target.uns[key_added] = {
        "table": table,
        "summary": summarize_comparison(table),
        "per_seed": per_seed,
        "params": h5ad_params(
            {
                "label_key": label_key,
                "use_reps": use_reps,
                "seeds": seeds,
                "test_size": test_size,
                "k": k,
                "ensemble_controls": controls,
                **{key: v for key, v in {**TRAIN_DEFAULTS, **train}.items() if key != "seed"},
                "fusion": fusions,
            }
        ),
    }
    logg.info(
        "    finished",
        time=start,
        deep=f"added '{key_added}' (adata.uns)\n{target.uns[key_added]['summary'].to_string()}",
    )
    return adata if copy else None


def _check_arguments(seeds: Sequence[int], test_size: float, k: int, train: dict[str, Any]) -> list[int]:
    if "seed" in train:
        msg = "Pass `seeds=[...]` rather than `seed`: every seed is one split and one training run."
        raise TypeError(msg)
    unknown = set(train) - set(TRAIN_DEFAULTS)
    if unknown:
        msg = f"Unexpected training arguments: {sorted(unknown)} (known: {sorted(set(TRAIN_DEFAULTS) - {'seed'})})."
        raise TypeError(msg)
    seeds = check_seeds(seeds)
    if not 0.0 < test_size < 1.0:
        msg = f"`test_size` must be in (0, 1), got {test_size}."
        raise ValueError(msg)
    if k < 1:
        msg = f"`k` must be positive, got {k}."
        raise ValueError(msg)
    return seeds


def _fusions(train: dict[str, Any]) -> list[str]:
    """The fusions to compare (``train['fusion']``: one name or a list), checked; ``train`` keeps the first."""
    from ...core.fusion.defaults import FUSIONS

    fusion = train.get("fusion", TRAIN_DEFAULTS["fusion"])
    fusions = [fusion] if isinstance(fusion, str) else list(fusion)
    if not fusions or len(set(fusions)) != len(fusions) or any(f not in FUSIONS for f in fusions):
        msg = f"`fusion` must be one of {list(FUSIONS)} or a list of them without repeats, got {fusion!r}."
        raise ValueError(msg)
    train["fusion"] = fusions[0]
    return fusions


def _controls(ensemble_controls: bool | Sequence[str], use_reps: list[str]) -> list[str]:
    """The keys of ``use_reps`` that get an ensemble-control row, checked."""
    if isinstance(ensemble_controls, bool):
        return list(use_reps) if ensemble_controls else []
    controls = [ensemble_controls] if isinstance(ensemble_controls, str) else list(ensemble_controls)
    unknown = [c for c in controls if c not in use_reps]
    if unknown or len(set(controls)) != len(controls):
        msg = f"`ensemble_controls` must be a bool or keys of `use_reps` {use_reps} without repeats, got {controls}."
        raise ValueError(msg)
    return controls


def comparison_methods(
    use_reps: Sequence[str], fusions: Sequence[str] = (TRAIN_DEFAULTS["fusion"],), controls: Sequence[str] = ()
) -> list[tuple[str, list[int], str, str]]:
    """``(row name, indices of the representations used, 'mlp' | 'knn', fusion)`` of every compared annotator.

    The first fusion's row is ``'scMPT (a + b)'``, further fusions' rows ``'scMPT[<fusion>] (a + b)'``, then
    ``'ensemble (a)'`` for every key in ``controls``: the first fusion on ``len(use_reps)`` copies of ``a``.
    """
    both = " + ".join(use_reps)
    methods = [
        (f"scMPT ({both})" if j == 0 else f"scMPT[{f}] ({both})", list(range(len(use_reps))), "mlp", f)
        for j, f in enumerate(fusions[: 1 if len(use_reps) == 1 else None])
    ]
    n = max(2, len(use_reps))  # with one key the fusion row is already its MLP: the control fuses two copies
    methods += [(f"ensemble ({r})", [use_reps.index(r)] * n, "mlp", fusions[0]) for r in controls]
    if len(use_reps) > 1:
        methods += [(f"MLP ({r})", [i], "mlp", fusions[0]) for i, r in enumerate(use_reps)]
    return methods + [(f"kNN ({r})", [i], "knn", "") for i, r in enumerate(use_reps)]


def run_comparison(
    reps: Sequence[np.ndarray],
    labels: pd.Categorical,
    methods: Sequence[tuple[str, list[int], str, str]],
    *,
    use_reps: Sequence[str],
    label_key: str,
    seeds: Sequence[int],
    test_size: float,
    k: int,
    device: Any,
    progress: bool,
    train: dict[str, Any],
) -> pd.DataFrame:
    """The kernel of :func:`compare_annotators`: train and score every method on every seed's split (arrays in)."""
    from tqdm.auto import tqdm

    from ...core.base.splits import stratified_split

    codes = np.asarray(labels.codes)
    rows = []
    bar = tqdm(total=len(seeds) * len(methods), desc="comparing", unit="run", disable=not progress)
    for seed in seeds:
        tr, te = stratified_split(codes, test_size, seed)
        train_labels = pd.Categorical.from_codes(codes[tr], categories=labels.categories)
        truth = np.asarray(labels)[te]
        for name, which, kind, fusion in methods:
            if kind == "mlp":
                model = ScMPT.from_arrays(
                    [reps[i][tr] for i in which],
                    train_labels,
                    use_reps=[use_reps[i] for i in which],
                    label_key=label_key,
                    device=device,
                    progress=False,
                    **{**train, "fusion": fusion, "seed": seed},
                )
                proba = model.predict_proba([reps[i][te] for i in which], device=device)
                pred, confidence = np.asarray(model.classes)[proba.argmax(1)], proba.max(1)
            else:
                top, frac = knn_vote(reps[which[0]][tr], codes[tr], reps[which[0]][te], k, len(labels.categories))
                pred, confidence = np.asarray(labels.categories)[top[:, 0]], frac[:, 0]
            scores = classification_scores(truth, pred)
            scores["ece"] = expected_calibration_error(truth, pred, confidence)
            rows.append({"method": name, "seed": seed, **{s: scores[s] for s in SCORES}, "n_test": scores["n"]})
            bar.update()
    bar.close()
    return pd.DataFrame(rows)


def comparison_table(per_seed: pd.DataFrame, methods: Sequence[str], n_seeds: int) -> pd.DataFrame:
    """Mean and sample sd over seeds of every score, one row per method (in ``methods`` order)."""
    grouped = per_seed.groupby("method", sort=False)
    table = pd.DataFrame(index=pd.Index(list(methods), name="method"))
    for s in SCORES:
        table[f"{s}_mean"] = grouped[s].mean()
        table[f"{s}_sd"] = grouped[s].std(ddof=1).fillna(0.0) if n_seeds > 1 else 0.0
    table["n_test"] = grouped["n_test"].first().astype(np.int64)
    return table
