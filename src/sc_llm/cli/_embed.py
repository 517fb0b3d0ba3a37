"""``sc-llm embed``: embed the cells of a file in resumable shards (the batch form of ``sl.jobs.embed``).

Only the standard library is imported here; the work happens in :func:`embed_command`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_embed_parser(sub) -> argparse.ArgumentParser:
    """Add the ``embed`` subcommand to an argparse sub-parser collection."""
    from ._generate import add_shard_options

    p = sub.add_parser(
        "embed",
        help="embed the cells of an .h5ad/.zarr file in resumable shards (local or Ray)",
        description=(
            "Embed every cell of INPUT with a text encoder (or an scGPT checkpoint folder), shard by shard, into the "
            "zarr store --store. Cell sentences come from .obs[--sentence-key], else are ranked from the expression. "
            "A killed run continues "
            "with --resume; a store of a different job is refused (--overwrite discards it). Prints a one-line "
            "summary; --out also writes an AnnData with the input's .obs and the embedding in .obsm."
        ),
    )
    p.add_argument("input", type=Path, help="an .h5ad file or an AnnData .zarr folder")
    p.add_argument("--store", type=Path, required=True, help="folder of the resumable result store")
    p.add_argument("--out", type=Path, default=None, help="also write .obs + .obsm[KEY] to this .h5ad or .zarr")
    p.add_argument("--model", default="llmrails/ember-v1", help="text encoder: hub id or local folder")
    p.add_argument("--key-added", default=None, help="obsm key in --out (default: X_ + the model's short name)")
    p.add_argument("--sentence-key", default="cell_sentence", help=".obs column of cell sentences, if present")
    p.add_argument("--layer", default=None, help="layer to rank sentences from (default: .raw if present, else .X)")
    p.add_argument("--use-raw", default=None, action=argparse.BooleanOptionalAction, help="rank from .raw")
    p.add_argument("--gene-symbols", default=None, help=".var column of gene symbols (default: var_names)")
    p.add_argument("--n-genes", type=int, default=None, help="keep the top N genes of each sentence")
    p.add_argument("--batch-size", type=int, default=32, help="cells per forward pass (default: 32)")
    p.add_argument("--token-budget", type=int, default=None, help="batch by padded tokens instead of cells")
    p.add_argument("--max-length", type=int, default=None, help="tokens per cell (default: the model's)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the first available)")
    p.add_argument("--revision", default=None, help="hub revision of the model")
    p.add_argument("--prefix", default=None, help="text put before the genes of every sentence")
    p.add_argument("--dtype", default=None, help="compute dtype: float32, bfloat16, float16")
    p.add_argument("--trust-remote-code", action="store_true", help="let transformers run the model's own code")
    p.add_argument("--n-bins", type=int, default=None, help="scGPT: expression bins (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0, help="scGPT: seed of its random steps (default: 0)")
    add_shard_options(p)
    p.add_argument("--host-cpus", type=int, default=0, help="Ray, text encoders: CPU actors tokenising ahead")
    p.set_defaults(run=embed_command)
    return p


def embed_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``sc-llm embed``."""
    from ._generate import check_store_args

    check_store_args(args, parser)
    store = args.store
    import sc_llm as sl

    result = sl.jobs.embed(
        args.input,
        store,
        model=args.model,
        sentence_key=args.sentence_key,
        layer=args.layer,
        use_raw=args.use_raw,
        gene_symbols=args.gene_symbols,
        n_genes=args.n_genes,
        batch_size=args.batch_size,
        token_budget=args.token_budget,
        max_length=args.max_length,
        device=args.device,
        revision=args.revision,
        prefix=args.prefix,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
        n_bins=args.n_bins,
        seed=args.seed,
        shard_size=args.shard_size,
        engine=args.engine,
        num_workers=args.num_workers,
        num_gpus_per_worker=args.gpus_per_worker,
        max_retries=args.max_retries,
        host_cpus=args.host_cpus,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    wrote = f"; wrote {args.out}" if args.out is not None else ""
    if args.out is not None:
        _write_out(args, result)
    print(f"sc-llm embed: {result.last_run.line()} -> {store}{wrote}")
    return 0


def _write_out(args: argparse.Namespace, store) -> None:
    """Write the input's ``.obs`` with the embedding in ``.obsm`` and the job in ``.uns``, atomically."""
    import anndata as ad

    from .._utils._anndata import uns_key
    from .._utils._cell_files import CellFile
    from ..tl.embedding._embed import default_key
    from ._write import write_anndata

    m = store.manifest
    scgpt = m["job"] == "embed/scgpt"
    key = args.key_added or ("X_scgpt" if scgpt else default_key(args.model))
    obs = ad.io.read_elem(CellFile(args.input).root["obs"])
    params = {
        "backend": "scgpt" if scgpt else "text",
        **m["model"],
        **m["params"],
        **m["input"],
        "store": str(store.path),
        "shard_size": m["shard_size"],
    }
    if scgpt:
        n_genes = store.read("n_genes")
        params.update(
            n_empty=int((n_genes == 0).sum()), n_subsampled=int((n_genes > m["params"]["max_length"] - 1).sum())
        )
    else:
        params["n_truncated"] = int(store.read("truncated").sum())
    params["model"] = params.pop("id")
    params = {k: v for k, v in params.items() if v is not None}  # .uns cannot hold None
    out = ad.AnnData(obs=obs, obsm={key: store.read("embedding")}, uns={uns_key(key): {"params": params}})
    write_anndata(out, args.out)
