"""``sc-llm generate`` and ``sc-llm perturb``: cell-LM generation in resumable shards (``sl.jobs``) from the shell.

Only the standard library is imported here; the work happens in the commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _common(p: argparse.ArgumentParser, *, sample_default: bool) -> None:
    p.add_argument("--model", required=True, help="a cell LM folder written by CellLM.save")
    p.add_argument("--store", type=Path, required=True, help="folder of the resumable result store")
    p.add_argument("--out", type=Path, default=None, help="also write the generated cells to this .h5ad or .zarr")
    p.add_argument("--n-genes", type=int, default=100, help="genes per sentence (default: 100)")
    flag = "--greedy" if sample_default else "--sample"
    p.add_argument(flag, action="store_true", help="greedy decoding" if sample_default else "sample (seeded)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: 1.0)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the K likeliest tokens")
    p.add_argument("--top-p", type=float, default=None, help="sample from the smallest head of mass P")
    p.add_argument("--seed", type=int, default=0, help="seed of each cell's sampling stream (default: 0)")
    p.add_argument("--batch-size", type=int, default=16, help="sentences generated together (default: 16)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the first available)")
    add_shard_options(p)


def add_shard_options(p: argparse.ArgumentParser) -> None:
    """The options every sharded command shares (plan, engine, resumption, progress)."""
    p.add_argument("--shard-size", type=int, default=10_000, help="cells per shard (default: 10000)")
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="local process or Ray actors")
    p.add_argument("--num-workers", type=int, default=2, help="Ray actors, each loading the model once")
    p.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs per Ray actor (0: one CPU each)")
    p.add_argument("--max-retries", type=int, default=3, help="restarts of a dead Ray actor, its shard retried")
    p.add_argument("--resume", action="store_true", help="continue the job in an existing --store")
    p.add_argument("--overwrite", action="store_true", help="discard an existing --store and start again")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_generation_parsers(sub) -> None:
    """Add the ``generate`` and ``perturb`` subcommands to an argparse sub-parser collection."""
    gen = sub.add_parser(
        "generate",
        help="generate cells of given types with a cell LM, in resumable shards",
        description=(
            "Write --n-cells cells of each --cell-type with a cell LM (sampled by default), shard by shard, into "
            "--store; --out writes them as AnnData (sentences in .obs, decoded expression in .X)."
        ),
    )
    gen.add_argument("--cell-type", action="append", required=True, help="a cell type (repeat for several)")
    gen.add_argument("--n-cells", type=int, default=100, help="cells per cell type (default: 100)")
    _common(gen, sample_default=True)
    gen.set_defaults(run=generate_command)
    pert = sub.add_parser(
        "perturb",
        help="predict the control cells of a file after a perturbation with a cell LM, in resumable shards",
        description=(
            "Each control cell of INPUT (sentence from .obs[--sentence-key], else ranked from the expression; cell "
            "type from .obs[--cell-type-key]) prompts the cell LM, which writes the perturbed cell's sentence "
            "(greedy by default). --out writes the predicted cells as AnnData."
        ),
    )
    pert.add_argument("input", type=Path, help="an .h5ad file or an AnnData .zarr folder of control cells")
    pert.add_argument("--perturbation", required=True, help="the perturbation's name, as in training")
    pert.add_argument("--sentence-key", default="cell_sentence", help=".obs column of cell sentences, if present")
    pert.add_argument("--cell-type-key", default="cell_type", help=".obs column of cell types")
    pert.add_argument("--layer", default=None, help="layer to rank sentences from (default: .raw, else .X)")
    pert.add_argument("--use-raw", default=None, action=argparse.BooleanOptionalAction, help="rank from .raw")
    pert.add_argument("--gene-symbols", default=None, help=".var column of gene symbols (default: var_names)")
    _common(pert, sample_default=False)
    pert.set_defaults(run=perturb_command)


def check_store_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """The checks every sharded command makes before it loads anything (shared with ``sc-llm embed``)."""
    if args.resume and args.overwrite:
        parser.error("pass --resume or --overwrite, not both")
    store = args.store
    if store.exists() and (not store.is_dir() or any(store.iterdir())) and not (args.resume or args.overwrite):
        parser.error(f"--store {str(store)!r} exists; pass --resume to continue it or --overwrite to start again")
    if args.out is not None and args.out.suffix not in (".h5ad", ".zarr"):
        parser.error(f"--out {str(args.out)!r} must end in .h5ad or .zarr")


def _run_kwargs(args: argparse.Namespace) -> dict:
    return {
        "n_genes": args.n_genes,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "device": args.device,
        "shard_size": args.shard_size,
        "engine": args.engine,
        "num_workers": args.num_workers,
        "num_gpus_per_worker": args.gpus_per_worker,
        "max_retries": args.max_retries,
        "overwrite": args.overwrite,
        "progress": not args.no_progress,
    }


def generate_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``sc-llm generate``."""
    check_store_args(args, parser)
    if args.n_cells < 1:
        parser.error("--n-cells must be at least 1")
    import sc_llm as sl

    types = [t for t in args.cell_type for _ in range(args.n_cells)]
    store = sl.jobs.generate_cells(
        args.model, args.store, cell_type=types, do_sample=not args.greedy, **_run_kwargs(args)
    )
    _finish("generate", args, store, input=None)
    return 0


def perturb_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``sc-llm perturb``."""
    check_store_args(args, parser)
    import sc_llm as sl

    store = sl.jobs.predict_perturbation(
        args.input,
        args.store,
        model=args.model,
        perturbation=args.perturbation,
        sentence_key=args.sentence_key,
        cell_type_key=args.cell_type_key,
        layer=args.layer,
        use_raw=args.use_raw,
        gene_symbols=args.gene_symbols,
        do_sample=args.sample,
        **_run_kwargs(args),
    )
    _finish("perturb", args, store, input=args.input)
    return 0


def _finish(command: str, args: argparse.Namespace, store, *, input) -> None:
    import sc_llm as sl

    from ._write import write_anndata

    wrote = ""
    if args.out is not None:
        cells = sl.jobs.read_cells(store, input=input)
        write_anndata(cells, args.out)
        share = cells.uns["cell_lm"]["valid_gene_share"]
        wrote = f"; {cells.n_obs} cells, {share:.1%} valid genes -> {args.out}"
    print(f"sc-llm {command}: {store.last_run.line()} -> {store.path}{wrote}")
