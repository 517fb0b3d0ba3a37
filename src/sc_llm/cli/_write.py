"""Write a command's AnnData output atomically: ``.h5ad`` as one file, ``.zarr`` as one folder."""

from __future__ import annotations

from pathlib import Path


def write_anndata(adata, out: Path) -> None:
    """Write ``adata`` to ``out`` (``.h5ad`` or ``.zarr``) under a temporary name, then move it into place."""
    from ..core.base.atomic import atomic_file, atomic_folder

    if out.suffix == ".h5ad":
        with atomic_file(out, suffix=".h5ad") as tmp:
            adata.write_h5ad(tmp)
    else:
        with atomic_folder(out, suffix=".zarr") as tmp:
            adata.write_zarr(tmp)
