"""Where the gene prior pays (issue 23): reference and query cells measured on different gene panels.

GenePT-w is a linear projection ``X · G`` of the expression, so on one matrix it adds nothing PCA lacks but a
prior on which genes belong together. That prior is what lets two datasets measured on *different genes*
meet in one space: a query gene the reference never measured still lands near the reference genes whose
descriptions are alike. This benchmark measures it.

For each seed, the labelled cells are split as ``compare_annotators`` does (stratified, 20 % test); the
training cells keep a random ``--panel`` share of the genes (panel A), the test cells another, independent
one (panel B; the two share about ``panel²`` of the genes). Compared, on the same splits, by cosine 10-NN and
an MLP (scMPT's single-representation network) trained on the reference cells:

- ``PCA (shared genes)``: the usual reference mapping: the genes both panels measured, standardised with the
  reference's mean and sd, 50 principal components fitted on the reference and applied to the query;
- ``GenePT-w (panel genes)``: each cell over all of its own panel's genes with text
  (``sl.tl.gene_text_embed``'s kernel);
- ``GenePT-w (shared genes)``: the same over the shared genes only (is it the extra genes that pay?);
- controls: GenePT-w over the panel genes with the gene vectors shuffled among genes, or random;
- ``scMPT (PCA + GenePT-w)`` vs the same-budget ensemble of two PCA copies (stacked fusion).

    python benchmarks/bench_genept_panels.py [--tasks kang_ct,pbmc] [--panel 0.5] [--seeds 5] [--cache DIR]

Gene vectors come from the cache that ``bench_genept.py timing`` fills (MiniLM over the shipped texts).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scanpy as sc
from _machine import machine_line
from bench_genept import DEFAULT_CACHE, default_model
from scipy import sparse

import sc_llm as sl
from sc_llm.core.base.splits import stratified_split
from sc_llm.core.knn import knn_vote
from sc_llm.metrics import classification_scores
from sc_llm.tl.genes._genept import genept_w


def genept(X, G, genes_used):
    """GenePT-w of the rows of ``X`` over the columns in ``genes_used`` (a boolean mask) with text."""
    X = sparse.csr_matrix(X)
    E, n = genept_w([(0, X.shape[0], X)], G, genes_used, X.shape[0])
    return E, n


def pca_shared(Xr, Xq, n_comps=50, seed=0):
    """Reference mapping on shared genes: z-score by the reference, PCA fitted on it, applied to the query."""
    from sklearn.decomposition import PCA

    Xr, Xq = (x.toarray() if sparse.issparse(x) else np.asarray(x) for x in (Xr, Xq))
    mu, sd = Xr.mean(0), Xr.std(0)
    sd[sd == 0] = 1
    Zr, Zq = np.clip((Xr - mu) / sd, -10, 10), np.clip((Xq - mu) / sd, -10, 10)
    pca = PCA(n_components=min(n_comps, Zr.shape[1] - 1), random_state=seed).fit(Zr)
    return pca.transform(Zr).astype(np.float32), pca.transform(Zq).astype(np.float32)


def mlp(reps_tr, labels_tr, reps_te, names, seed):
    model = sl.tl.ScMPT.from_arrays(reps_tr, labels_tr, use_reps=names, label_key="y", progress=False, seed=seed)
    proba = model.predict_proba(reps_te)
    return np.asarray(model.classes)[proba.argmax(1)]


def knn(Xr, codes, Xq, categories):
    top, _ = knn_vote(Xr, codes, Xq, 10, len(categories))
    return np.asarray(categories)[top[:, 0]]


def one_seed(X, G, has_text, labels, seed, panel):
    codes = np.asarray(labels.codes)
    tr, te = stratified_split(codes, 0.2, seed)
    rng = np.random.default_rng(1000 + seed)
    a, b = rng.random(X.shape[1]) < panel, rng.random(X.shape[1]) < panel
    shared = a & b
    Xr, Xq = X[tr], X[te]
    P_r, P_q = pca_shared(Xr[:, shared], Xq[:, shared], seed=seed)
    rows = {"PCA (shared genes)": (P_r, P_q)}
    rows["GenePT-w (panel genes)"] = (genept(Xr, G, has_text & a)[0], genept(Xq, G, has_text & b)[0])
    rows["GenePT-w (shared genes)"] = (genept(Xr, G, has_text & shared)[0], genept(Xq, G, has_text & shared)[0])
    C = G.copy()
    C[has_text] -= G[has_text].mean(0)  # the direction every gene text shares, removed
    C[has_text] /= np.linalg.norm(C[has_text], axis=1, keepdims=True)
    rows["GenePT-w centred (panel genes)"] = (genept(Xr, C, has_text & a)[0], genept(Xq, C, has_text & b)[0])
    text_rows = np.flatnonzero(has_text)
    shuffled = G.copy()
    shuffled[text_rows] = G[rng.permutation(text_rows)]
    rows["control: GenePT-w, shuffled gene vectors"] = (
        genept(Xr, shuffled, has_text & a)[0],
        genept(Xq, shuffled, has_text & b)[0],
    )
    R = G.copy()
    noise = rng.normal(size=(len(text_rows), G.shape[1]))
    R[text_rows] = noise / np.linalg.norm(noise, axis=1, keepdims=True)
    rows["control: GenePT-w, random gene vectors"] = (genept(Xr, R, has_text & a)[0], genept(Xq, R, has_text & b)[0])
    truth = np.asarray(labels)[te]
    ytr = pd.Categorical.from_codes(codes[tr], categories=labels.categories)
    out = []
    for name, (r, q) in rows.items():
        for method, pred in (
            ("kNN", knn(r, codes[tr], q, labels.categories)),
            ("MLP", mlp([r], ytr, [q], ["a"], seed)),
        ):
            out.append({"method": f"{method}, {name}", "seed": seed, **classification_scores(truth, pred)})
    gw = rows["GenePT-w (panel genes)"]
    for name, pair in (("scMPT (PCA shared + GenePT-w panel)", gw), ("ensemble (PCA shared x2)", (P_r, P_q))):
        pred = mlp([P_r, pair[0]], ytr, [P_q, pair[1]], ["pca", "b"], seed)
        out.append({"method": name, "seed": seed, **classification_scores(truth, pred)})
    info = {"seed": seed, "genes A": int(a.sum()), "genes B": int(b.sum()), "shared": int(shared.sum())}
    return out, info


def run(name, adata, label_key, G, has_text, seeds, panel):
    X = adata.raw.X if adata.raw is not None else adata.X
    labels = adata.obs[label_key].astype("category").array
    start = time.perf_counter()
    results, infos = [], []
    for seed in seeds:
        out, info = one_seed(sparse.csr_matrix(X), G, has_text, labels, seed, panel)
        results += out
        infos.append(info)
    frame = pd.DataFrame(results)
    summary = frame.groupby("method", sort=False)["f1_macro"].agg(["mean", "std"])
    print(f"\n== {name} ({label_key}), panel share {panel}, {len(seeds)} seeds ({time.perf_counter() - start:.0f} s)")
    print(f"  genes: {pd.DataFrame(infos).drop(columns='seed').mean().round(0).to_dict()} on average")
    print("  macro-F1 mean ± sd:")
    for method, row in summary.iterrows():
        print(f"    {method:48s} {row['mean']:.3f} ± {row['std']:.3f}")
    f1 = frame.pivot(index="seed", columns="method", values="f1_macro")
    for a, b in (
        ("MLP, GenePT-w (panel genes)", "MLP, PCA (shared genes)"),
        ("kNN, GenePT-w (panel genes)", "kNN, PCA (shared genes)"),
        ("MLP, GenePT-w (panel genes)", "MLP, control: GenePT-w, shuffled gene vectors"),
        ("MLP, GenePT-w centred (panel genes)", "MLP, PCA (shared genes)"),
        ("kNN, GenePT-w centred (panel genes)", "kNN, PCA (shared genes)"),
        ("scMPT (PCA shared + GenePT-w panel)", "ensemble (PCA shared x2)"),
    ):
        d = f1[a] - f1[b]
        print(f"  {a} - {b}: {d.mean():+.3f} (per seed {' '.join(f'{x:+.3f}' for x in d)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="kang_ct,pbmc")
    parser.add_argument("--panel", type=float, default=0.5, help="share of the genes each panel measures")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--model", default=None)
    parser.add_argument("--cache", default=DEFAULT_CACHE)
    args = parser.parse_args()
    model = args.model or default_model()
    print(machine_line())
    warnings.filterwarnings("ignore", category=FutureWarning)
    data = {}
    if "kang_ct" in args.tasks:
        data["kang2018"] = (sl.datasets.kang2018(), "cell_type")
    if "pbmc" in args.tasks:
        data["pbmc68k"] = (sc.datasets.pbmc68k_reduced(), "bulk_labels")
    for name, (adata, label_key) in data.items():
        sl.tl.gene_embeddings(adata, model=model, cache_dir=Path(args.cache), progress=False, dtype="float32")
        table = adata.raw if adata.raw is not None else adata
        G, has = table.varm["X_gene_text"], table.var["X_gene_text_has_text"].to_numpy()
        run(name, adata, label_key, G, has, list(range(args.seeds)), args.panel)


if __name__ == "__main__":
    main()
