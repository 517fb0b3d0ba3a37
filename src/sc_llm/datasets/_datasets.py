"""Small public datasets for tutorials, tests and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anndata import AnnData

KANG2018_URL = "https://drive.google.com/uc?id=1r87vhoLLq6PXAYdmyyd89zG90eJOFYLk"
"""scGen's preprocessed Kang et al. (2018) IFN-β PBMC training data (``train_kang.h5ad``)."""


def pbmc68k_reduced() -> AnnData:
    """700 PBMCs from 10x (Zheng et al. 2017), bundled with scanpy; no download.

    ``.raw`` holds log-normalised expression of 765 genes, ``.obs['bulk_labels']`` ten cell types.
    ``.X`` is scaled, so read ``.raw`` (the default of :func:`sc_llm.pp.cell_sentences`) for sentences.
    """
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced()


def kang2018(path: str | Path | None = None) -> AnnData:
    """Kang et al. (2018) PBMCs, control vs IFN-β stimulated, as preprocessed for scGen.

    ``.X`` is log1p-normalised expression of 6,998 genes; ``.obs['condition']`` is ``'control'`` or
    ``'stimulated'``; ``.obs['cell_type']`` has 7 cell types.

    Parameters
    ----------
    path
        A local ``.h5ad`` copy to read. ``None`` downloads the public file once into
        ``scanpy.settings.datasetdir`` and reads it from there afterwards.
    """
    import anndata as ad
    import scanpy as sc

    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            msg = f"No file at {str(path)!r}; pass the path of a Kang 2018 .h5ad, or `path=None` to download it."
            raise FileNotFoundError(msg)
        return ad.read_h5ad(path)
    target = Path(sc.settings.datasetdir) / "kang2018_ifnb_pbmc.h5ad"
    try:
        return sc.read(target, backup_url=KANG2018_URL)
    except OSError as e:
        msg = (
            f"Could not download Kang 2018 from {KANG2018_URL} ({e}). Download it where you have network access "
            "and pass `path=` to the local .h5ad."
        )
        raise OSError(msg) from e
