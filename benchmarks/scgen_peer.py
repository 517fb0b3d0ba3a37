"""Train scGen (pertpy's implementation) leaving one Kang 2018 cell type's stimulated cells out; save predictions.

Run by bench_perturbation.py with the interpreter of an environment holding pertpy (see benchmarks/README.md);
sc_llm itself never depends on scGen. Writes ``<out>/<cell type>.h5ad`` with the predicted stimulated cells.
"""

import argparse
import sys
import time
from pathlib import Path

from _machine import machine_line


def _import_pertpy_scgen():
    # pertpy 1.0.3 imports `multipletests` from a statsmodels module that newer statsmodels no longer re-exports
    import statsmodels.sandbox.stats.multicomp as multicomp
    from statsmodels.stats.multitest import multipletests

    multicomp.multipletests = multipletests
    import pertpy as pt

    return pt.tl.Scgen


def main() -> None:
    print(machine_line())
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--cell-types", nargs="+", required=True)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import anndata as ad
    import scvi

    Scgen = _import_pertpy_scgen()
    scvi.settings.seed = args.seed
    adata = ad.read_h5ad(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for cell_type in args.cell_types:
        tic = time.perf_counter()
        hide = (adata.obs["cell_type"] == cell_type) & (adata.obs["condition"] == "stimulated")
        train = adata[~hide.to_numpy()].copy()
        Scgen.setup_anndata(train, batch_key="condition", labels_key="cell_type")
        model = Scgen(train)
        model.train(
            max_epochs=args.max_epochs,
            batch_size=32,
            early_stopping=True,
            early_stopping_patience=25,
            accelerator="cpu",
        )
        pred, _ = model.predict(ctrl_key="control", stim_key="stimulated", celltype_to_predict=cell_type)
        pred.obs["method"] = "scGen"
        pred.uns["seconds"] = time.perf_counter() - tic
        pred.write_h5ad(out / f"{cell_type}.h5ad")
        print(f"{cell_type}: {pred.n_obs} cells in {pred.uns['seconds']:.1f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
