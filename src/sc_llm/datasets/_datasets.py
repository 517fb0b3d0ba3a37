"""Small public datasets for tutorials, tests and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anndata import AnnData

_DATA_DIR = Path(__file__).with_name("data")
KANG2018_FILE = _DATA_DIR / "kang2018_ifnb_pbmc.h5ad"
"""scGen's preprocessed Kang et al. (2018) IFN-β PBMC data, shipped with the package (2.8 MB, anndata 0.12)."""


def pbmc68k_reduced() -> AnnData:
    """700 PBMCs from 10x (Zheng et al. 2017), bundled with scanpy; no download.

    ``.raw`` holds log-normalised expression of 765 genes, ``.obs['bulk_labels']`` ten cell types.
    ``.X`` is scaled, so read ``.raw`` (the default of :func:`sc_llm.pp.cell_sentences`) for sentences.
    """
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()


def kang2018(path: str | Path | None = None) -> AnnData:
    """Kang et al. (2018) PBMCs, control vs IFN-β stimulated, as preprocessed for scGen; shipped, offline.

    1,975 cells × 6,998 genes. ``.X`` is log1p-normalised expression (CSR); ``.obs['condition']`` is
    ``'control'`` or ``'stimulated'``; ``.obs['cell_type']`` has 7 cell types; ``.var['gene_symbol']``.

    Source: Kang, H. M. et al. "Multiplexed droplet single-cell RNA-sequencing using natural genetic
    variation", Nat. Biotechnol. 36, 89–94 (2018), GEO GSE96583 (public), as subsampled and normalised by
    scGen (Lotfollahi et al., Nat. Methods 2019) for its tutorial. The copy shipped here is that file.

    Parameters
    ----------
    path
        A local ``.h5ad`` copy to read instead of the copy shipped with the package.
    """
    import anndata as ad

    if path is None:
        path = KANG2018_FILE
    path = Path(path).expanduser()
    if not path.is_file():
        msg = f"No file at {str(path)!r}; pass the path of a Kang 2018 .h5ad, or `path=None` for the shipped copy."
        raise FileNotFoundError(msg)
    return ad.read_h5ad(path)
