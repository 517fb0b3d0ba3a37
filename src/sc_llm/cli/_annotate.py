"""``sc-llm annotate``: label the cells of a query file from a labelled reference file (kNN or scMPT).

Only the standard library is imported here; the work happens in :func:`annotate_command`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_annotate_parser(sub) -> argparse.ArgumentParser:
    """Add the ``annotate`` subcommand to an argparse sub-parser collection."""
    p = sub.add_parser(
        "annotate",
        help="label the cells of a query file from a labelled reference file (kNN or scMPT)",
        description=(
            "Predict .obs[--label-key] of every QUERY cell from the REFERENCE cells, with sl.tl.knn_annotate "
            "(--method knn, one representation) or sl.tl.scmpt_annotate (--method scmpt, two or more). "
            "Representations are .obsm keys both files hold (--use-rep), and/or a text embedding computed here "
            "with --model (cell sentences ranked first if absent); with --cache-dir the embedding is stored in "
            "resumable shards, so a killed run continues where it stopped when rerun. Writes the query with its "
            "predictions to --out and prints a one-line summary."
        ),
    )
    p.add_argument("query", type=Path, help="an .h5ad file or an AnnData .zarr folder of the cells to label")
    p.add_argument("--reference", type=Path, required=True, help="an .h5ad/.zarr file of labelled cells")
    p.add_argument("--label-key", required=True, help=".obs column of the reference's labels")
    p.add_argument("--out", type=Path, required=True, help="the annotated query, .h5ad or .zarr")
    p.add_argument("--method", choices=["knn", "scmpt"], default="knn", help="kNN vote or scMPT fusion (default: knn)")
    p.add_argument("--use-rep", action="append", default=[], help=".obsm key both files hold (repeat for several)")
    p.add_argument("--model", default=None, help="also embed both files' cell sentences with this text encoder")
    p.add_argument("--embed-key", default="X_text", help=".obsm key of that embedding (default: X_text)")
    p.add_argument("--cache-dir", type=Path, default=None, help="resumable shard stores of the embedding")
    p.add_argument("--key-added", default=None, help="key of the predictions (default: knn_label / scmpt)")
    p.add_argument("--k", type=int, default=10, help="kNN: neighbours (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="scMPT: seed of its training (default: 0)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the first available)")
    p.add_argument("--batch-size", type=int, default=32, help="embedding: cells per forward pass (default: 32)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(run=annotate_command)
    return p


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The representations to use; usage errors before anything is read."""
    reps = list(dict.fromkeys(args.use_rep + ([args.embed_key] if args.model else [])))
    if not reps:
        parser.error("pass --use-rep (an .obsm key both files hold) and/or --model (a text encoder to embed with)")
    if args.method == "knn" and len(reps) != 1:
        parser.error(f"--method knn votes in one representation, got {reps}; pick one or use --method scmpt")
    if args.method == "scmpt" and len(reps) < 2:
        parser.error(f"--method scmpt fuses two or more representations, got {reps}")
    for path in (args.query, args.reference):
        if not path.exists():
            parser.error(f"{str(path)!r} does not exist")
    if args.out.suffix not in (".h5ad", ".zarr"):
        parser.error(f"--out {str(args.out)!r} must end in .h5ad or .zarr")
    return reps


def _read(path: Path):
    import anndata as ad

    return ad.read_zarr(path) if path.suffix == ".zarr" or path.is_dir() else ad.read_h5ad(path)


def _embed(adata, args: argparse.Namespace, name: str) -> None:
    import sc_llm as sl

    if "cell_sentence" not in adata.obs:
        sl.pp.cell_sentences(adata)
    cache = None if args.cache_dir is None else args.cache_dir / name
    sl.tl.embed(
        adata,
        model=args.model,
        key_added=args.embed_key,
        batch_size=args.batch_size,
        device=args.device,
        cache_dir=cache,
        progress=not args.no_progress,
    )


def annotate_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``sc-llm annotate``."""
    reps = _check(args, parser)
    import sc_llm as sl

    from ._write import write_anndata

    query, reference = _read(args.query), _read(args.reference)
    if args.model:
        _embed(reference, args, "reference")
        _embed(query, args, "query")
    if args.method == "knn":
        key = args.key_added or "knn_label"
        truth = args.label_key if args.label_key in query.obs else None
        kw = {"label_key": args.label_key, "truth_key": truth, "k": args.k, "key_added": key}
        sl.tl.knn_annotate(query, reference, use_rep=reps[0], **kw)
    else:
        key = args.key_added or "scmpt"
        sl.tl.scmpt_annotate(
            query,
            reference,
            label_key=args.label_key,
            use_reps=reps,
            key_added=key,
            seed=args.seed,
            device=args.device,
            progress=not args.no_progress,
        )
    write_anndata(query, args.out)
    counts = query.obs[key].value_counts()
    top = ", ".join(f"{label} {n}" for label, n in counts.head(3).items())
    print(
        f"sc-llm annotate: {query.n_obs} cells labelled by {args.method} on {'+'.join(reps)} from "
        f"{reference.n_obs} reference cells ({len(counts)} labels; most: {top}) -> {args.out}"
    )
    return 0
