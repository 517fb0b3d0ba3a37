"""Read cells of an ``.h5ad`` or ``.zarr`` file a range of rows at a time, in any process (for sharded jobs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._anndata import choose_matrix, get_gene_names


class CellFile:
    """Rows of the expression matrix and ``.obs`` columns of an AnnData file, opened read-only on demand.

    Pickles as its path and options, so each worker process opens the file itself. ``use_raw=None`` reads
    ``raw/X`` when the file has it and no ``layer`` is given (scanpy's convention), else ``X``.
    """

    def __init__(self, path: str | os.PathLike, *, layer: str | None = None, use_raw: bool | None = None):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            msg = f"Input {str(self.path)!r} does not exist."
            raise FileNotFoundError(msg)
        if self.path.suffix not in (".h5ad", ".zarr"):
            msg = f"Input {str(self.path)!r} must be an .h5ad file or a .zarr folder written by AnnData."
            raise ValueError(msg)
        self.layer = layer
        self._root: Any = None
        layers = list(self.root["layers"]) if "layers" in self.root else []
        where = repr(str(self.path))
        choice = choose_matrix(layer, use_raw, has_raw="raw" in self.root, layers=layers, where=where)
        self.use_raw = choice == "raw"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_root": None}

    @property
    def root(self):
        """The open h5py file or zarr group."""
        if self._root is None:
            if self.path.suffix == ".h5ad":
                import h5py

                self._root = h5py.File(self.path, "r")
            else:
                import zarr

                self._root = zarr.open_group(str(self.path), mode="r")
        return self._root

    @property
    def matrix_key(self) -> str:
        """Where the matrix lives in the file: ``'X'``, ``'raw/X'`` or ``'layers/<name>'``."""
        return "raw/X" if self.use_raw else (f"layers/{self.layer}" if self.layer else "X")

    @property
    def source(self) -> str:
        """The matrix in AnnData terms, e.g. ``'raw.X'``."""
        return "raw.X" if self.use_raw else (f"layers[{self.layer!r}]" if self.layer else "X")

    @property
    def n_obs(self) -> int:
        """Number of cells."""
        return len(self.obs_names)

    @property
    def obs_names(self) -> pd.Index:
        """Cell names."""
        import anndata as ad

        obs = self.root["obs"]
        return pd.Index(ad.io.read_elem(obs[obs.attrs["_index"]]))

    def var(self) -> pd.DataFrame:
        """``.var`` of the matrix read (``raw/var`` with ``use_raw``)."""
        import anndata as ad

        return ad.io.read_elem(self.root["raw/var" if self.use_raw else "var"])

    def gene_names(self, gene_symbols: str | None = None) -> np.ndarray:
        """Gene names of the matrix columns (``var_names`` or a ``.var`` column of symbols)."""
        return get_gene_names(self.var(), gene_symbols)

    def has_obs(self, key: str) -> bool:
        """Whether ``.obs`` has column ``key``."""
        return key in self.root["obs"]

    def obs_column(self, key: str) -> pd.Series:
        """One ``.obs`` column."""
        import anndata as ad

        if not self.has_obs(key):
            msg = f"`{key}` not found in `.obs` of {str(self.path)!r}."
            raise KeyError(msg)
        return pd.Series(ad.io.read_elem(self.root["obs"][key]), index=self.obs_names)

    def rows(self, start: int, stop: int) -> sparse.csr_matrix:
        """Rows ``start:stop`` of the matrix as CSR (dense matrices are converted per block)."""
        import anndata as ad

        elem = self.root[self.matrix_key]
        if elem.attrs.get("encoding-type") in ("csr_matrix", "csc_matrix"):
            block = ad.io.sparse_dataset(elem)[start:stop]
            return sparse.csr_matrix(block)
        return sparse.csr_matrix(np.asarray(elem[start:stop]))
