"""Offline gene descriptions (names, aliases, GO terms) as text, for GenePT-style gene embeddings.

Built by ``scripts/build_gene_descriptions.py`` from Bioconductor org.Hs.eg.db and GO.db 3.16.0 (human) and
goatools 1.6.9's NCBI Gene test data (mouse); sources, versions and licences in ``gene_descriptions``.
"""

from __future__ import annotations

import gzip
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

_DATA_DIR = Path(__file__).with_name("data")
ORGANISM_FILES = {"human": "gene_descriptions_human.tsv.gz", "mouse": "gene_descriptions_mouse.tsv.gz"}
GO_FILE = _DATA_DIR / "go_terms.tsv.gz"
METADATA_FILE = _DATA_DIR / "gene_descriptions_metadata.json"
SEP = "|"
"""Separator of the list columns (``aliases``, ``ensembl_ids``, ``go_ids``, ``go_terms``, ``go_definitions``)."""
COLUMNS = ("name", "aliases", "entrez_id", "ensembl_ids", "gene_type", "go_ids", "go_terms", "summary")
"""The columns of every gene table, after its index ``symbol``; a reader adds a source's other columns after them."""
LIST_COLUMNS = ("aliases", "ensembl_ids", "go_ids", "go_terms", "go_definitions")
MATCH_KINDS = ("symbol", "symbol_case", "alias", "ensembl", "none")
DEFAULT_TEMPLATE = "{symbol}: {name}. GO: {go_terms}"
_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t"}


@lru_cache(maxsize=4)
def _read_shipped(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_filter=False)


def _source_metadata(organism: str) -> dict:
    meta = json.loads(METADATA_FILE.read_text())
    return {organism: meta[organism], "go": meta["go"]}


def gene_descriptions(organism: str = "human", *, go: bool = True, definitions: bool = False) -> pd.DataFrame:
    """Names, aliases, identifiers and GO terms of every human or mouse gene; shipped, offline.

    One row per gene symbol (NCBI Gene). Human (65,087 genes; 20,728 with GO terms): Bioconductor
    ``org.Hs.eg.db`` 3.16.0, i.e. NCBI Gene and gene2go of 2022-09-12, with Ensembl ids from NCBI's
    gene2ensembl, and term names from ``GO.db`` 3.16.0 (GO release 2022-07-01). GO ids are the direct
    annotations of all evidence codes (electronic IEA included), biological process first, then molecular
    function, then cellular component. NCBI entries of type ``biological-region`` are left out. Where NCBI
    gives one symbol to several genes, the protein-coding one (else the smallest Entrez id) is kept.
    Mouse (30,523 genes): the NCBI Gene tables of 2016-02-22 shipped in goatools 1.6.9's test data, with
    symbols, descriptions and aliases but **no GO annotations and no Ensembl ids** (those columns are empty).

    Licences: NCBI Gene is public domain; GO is CC BY 4.0; the Bioconductor packaging is Artistic-2.0.
    ``.attrs['source']`` holds the versions, dates, licences and counts.

    Parameters
    ----------
    organism
        ``'human'`` or ``'mouse'``.
    go
        Fill ``go_terms`` with the names of the gene's GO terms; ``False`` leaves it empty (and skips reading
        the GO table).
    definitions
        Also add a column ``go_definitions`` with the terms' definitions, in the order of ``go_ids``. Needs
        ``go=True``.

    Returns
    -------
    A DataFrame indexed by ``symbol`` with the string columns ``name`` (full name / NCBI description),
    ``aliases``, ``entrez_id``, ``ensembl_ids``, ``gene_type`` (human only), ``go_ids``, ``go_terms`` and
    ``summary`` (empty here: fill it from GenePT's NCBI summaries with ``read_gene_descriptions``), and
    ``go_definitions`` if asked for. List columns are ``'|'``-joined; a missing value is ``''``.
    """
    key = str(organism).strip().casefold()
    if key not in ORGANISM_FILES:
        msg = f"organism must be one of {sorted(ORGANISM_FILES)}, not {organism!r}."
        raise ValueError(msg)
    if definitions and not go:
        msg = "definitions=True adds the GO terms' definitions: pass go=True as well."
        raise ValueError(msg)
    table = _read_shipped(_DATA_DIR / ORGANISM_FILES[key]).set_index("symbol")
    table["go_terms"] = _go_column(table["go_ids"], "name") if go else ""
    table["summary"] = ""
    table = table[list(COLUMNS)].copy()
    if definitions:
        table["go_definitions"] = _go_column(table["go_ids"], "definition")
    table.attrs["source"] = _source_metadata(key)
    return table


def _go_column(go_ids: pd.Series, field: str) -> pd.Series:
    """``'|'``-joined GO term names (or definitions) for ``'|'``-joined GO ids; unknown ids are skipped."""
    terms = _read_shipped(GO_FILE)
    lookup = dict(zip(terms["go_id"], terms[field].str.replace(SEP, "/", regex=False), strict=True))
    values = [SEP.join(lookup[i] for i in ids.split(SEP) if i in lookup) if ids else "" for ids in go_ids]
    return pd.Series(values, index=go_ids.index, dtype=object)


def read_gene_descriptions(source: str | Path | Mapping[str, str] | pd.DataFrame) -> pd.DataFrame:
    """Read gene texts from a file, a dict or a DataFrame into the table shape of ``gene_descriptions``.

    Parameters
    ----------
    source
        One of

        - a path to a JSON object ``{symbol: text}``, such as GenePT's NCBI gene summaries; the texts go to
          ``summary``;
        - a path to a ``.csv`` (comma) or ``.tsv`` / ``.tab`` / ``.txt`` (tab) table with a ``symbol`` column
          and any text columns; ``name``, ``aliases``, ``summary`` … fill the standard columns, others follow;
        - any of these files gzipped (``.json.gz``, ``.csv.gz``, …);
        - a ``dict`` ``{symbol: text}`` (texts go to ``summary``);
        - a DataFrame with a ``symbol`` column, or indexed by symbol.

    Returns
    -------
    A DataFrame indexed by unique, non-empty ``symbol`` with the columns of ``gene_descriptions`` but
    ``go_definitions`` (``''`` where the source has none), then the source's other columns, all strings.
    """
    if isinstance(source, pd.DataFrame):
        return _normalise(source, "the DataFrame")
    if isinstance(source, Mapping):
        return _normalise(_from_mapping(source, "the dict"), "the dict")
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        return _normalise(_read_file(path), f"{str(path)!r}")
    msg = f"source must be a path, a dict {{symbol: text}} or a DataFrame, not {type(source).__name__}."
    raise TypeError(msg)


def _from_mapping(mapping: Mapping, origin: str) -> pd.DataFrame:
    bad = [k for k, v in mapping.items() if v is not None and not isinstance(v, str)]
    if bad:
        msg = (
            f"{origin} must map each gene symbol to one text; {len(bad)} values are not strings "
            f"(e.g. {bad[0]!r}: {type(mapping[bad[0]]).__name__})."
        )
        raise ValueError(msg)
    return pd.DataFrame({"symbol": list(mapping), "summary": [v or "" for v in mapping.values()]})


def _read_file(path: Path) -> pd.DataFrame:
    """A DataFrame from a JSON or delimited-text file, with the file and the fix named in every error."""
    if not path.is_file():
        msg = f"No file at {str(path)!r}; pass the path of a JSON {{symbol: text}} or a CSV/TSV with a 'symbol' column."
        raise FileNotFoundError(msg)
    if path.stat().st_size == 0:
        msg = f"{str(path)!r} is empty; it should hold a JSON {{symbol: text}} or a table with a 'symbol' column."
        raise ValueError(msg)
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    kind = suffixes[-2 if gzipped else -1] if len(suffixes) > gzipped else ""
    if kind != ".json" and kind not in _TABLE_SUFFIXES:
        msg = (
            f"Cannot tell the format of {str(path)!r} from its name: use .json for {{symbol: text}}, or "
            f"{', '.join(_TABLE_SUFFIXES)} for a table with a 'symbol' column (optionally gzipped, .gz)."
        )
        raise ValueError(msg)
    try:
        if kind == ".json":
            with gzip.open(path, "rt", encoding="utf-8") if gzipped else path.open(encoding="utf-8") as fh:
                data = json.load(fh)
        else:
            data = pd.read_csv(path, sep=_TABLE_SUFFIXES[kind], dtype=str, keep_default_na=False)
    except (OSError, EOFError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
        # json.JSONDecodeError and pandas' EmptyDataError are ValueErrors; gzip.BadGzipFile is an OSError
        msg = (
            f"Could not read {str(path)!r} as {'gzipped ' if gzipped else ''}{kind[1:].upper()}: {err}. "
            "Check that the file is complete and in that format (UTF-8 text)."
        )
        raise ValueError(msg) from err
    if kind == ".json":
        if not isinstance(data, dict):
            msg = f"{str(path)!r} holds a JSON {type(data).__name__}; expected an object {{symbol: text}}."
            raise ValueError(msg)
        return _from_mapping(data, repr(str(path)))
    return data


def _normalise(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Index by stripped string symbols, all columns as strings, the standard columns first."""
    if "symbol" in frame.columns:
        frame = frame.set_index("symbol")
    elif isinstance(frame.index, pd.RangeIndex) or pd.api.types.is_integer_dtype(frame.index):
        columns = list(map(str, frame.columns))
        msg = f"{origin} has no 'symbol' column (columns: {columns}); add one with the gene symbols."
        raise ValueError(msg)
    if len(frame) == 0:
        msg = f"{origin} holds no genes; give at least one symbol with its text."
        raise ValueError(msg)
    symbols = pd.Index(frame.index.astype(str).str.strip(), name="symbol")
    missing = np.asarray(frame.index.isna()) | np.asarray(symbols == "")
    if missing.any():
        msg = f"{origin} has {int(missing.sum())} rows without a symbol; fill or drop them."
        raise ValueError(msg)
    if symbols.has_duplicates:
        dups = symbols[symbols.duplicated()].unique()
        msg = f"{origin} repeats {len(dups)} symbols (e.g. {list(dups[:3])}); keep one row per symbol."
        raise ValueError(msg)
    out = frame.astype(object).where(frame.notna(), "").astype(str)
    out.index = symbols
    out.columns = out.columns.astype(str)
    for column in COLUMNS:
        if column not in out.columns:
            out[column] = ""
    return out[[*COLUMNS, *(c for c in out.columns if c not in COLUMNS)]]


@dataclass(frozen=True)
class GeneMatch:
    """How the genes of a dataset matched the rows of a gene table (:func:`match_genes`).

    Attributes
    ----------
    genes
        The dataset's gene names, in order.
    positions
        Row position in the table of each gene (``-1``: unmatched), ``int64``.
    how
        How each gene matched: one of :data:`MATCH_KINDS`.
    matched
        The table symbol each gene matched (``''``: unmatched).
    coverage
        ``n_genes``, ``n_matched``, ``fraction`` and the number of genes per kind of match.
    """

    genes: np.ndarray
    positions: np.ndarray
    how: np.ndarray
    matched: np.ndarray
    coverage: dict

    def to_frame(self) -> pd.DataFrame:
        """One row per dataset gene with ``position``, ``how`` (categorical) and ``matched``."""
        how = pd.Categorical(self.how, categories=list(MATCH_KINDS))
        frame = {"position": self.positions, "how": how, "matched": self.matched}
        return pd.DataFrame(frame, index=pd.Index(self.genes, name="gene"))


def _unique_lookup(keys: pd.Series, positions: np.ndarray) -> dict[str, int]:
    """``{key: position}`` for the keys that point to exactly one row (empty keys dropped)."""
    pairs = pd.DataFrame({"key": keys.to_numpy(), "position": positions}).drop_duplicates()
    pairs = pairs[pairs["key"] != ""]
    counts = pairs["key"].value_counts()
    pairs = pairs[pairs["key"].map(counts).to_numpy() == 1]
    return dict(zip(pairs["key"], pairs["position"].astype(int), strict=True))


def _list_lookup(column: pd.Series, normalise) -> dict[str, int]:
    """Unambiguous lookup from the entries of a ``'|'``-joined list column to row positions."""
    entries = column.reset_index(drop=True).str.split(SEP, regex=False).explode()
    return _unique_lookup(normalise(entries.fillna("").astype(str).str.strip()), entries.index.to_numpy())


def _ensembl_key(values: pd.Series) -> pd.Series:
    """Upper-case Ensembl ids without their version suffix (``ENSG00000105369.12`` → ``ENSG00000105369``)."""
    return values.fillna("").astype(str).str.strip().str.upper().str.split(".", n=1).str[0]


def _match_stages(names: pd.Series, symbols: pd.Series, table: pd.DataFrame, ensembl_ids) -> list[tuple]:
    """``(kind, query keys, {key: row position})`` for each rule of :func:`match_genes`, in order."""
    rows = np.arange(len(symbols))
    casefold_symbols = set(symbols.str.casefold())
    stages = [
        ("symbol", names, dict(zip(symbols, rows, strict=True))),
        ("symbol_case", names.str.casefold(), _unique_lookup(symbols.str.casefold(), rows)),
    ]
    if "aliases" in table.columns:
        aliases = _list_lookup(table["aliases"].fillna("").astype(str), lambda s: s.str.casefold())
        aliases = {k: v for k, v in aliases.items() if k not in casefold_symbols}
        stages.append(("alias", names.str.casefold(), aliases))
    if "ensembl_ids" in table.columns:
        query = names if ensembl_ids is None else pd.Series(list(ensembl_ids), dtype=object)
        lookup = _list_lookup(table["ensembl_ids"].fillna("").astype(str), _ensembl_key)
        stages.append(("ensembl", _ensembl_key(query), lookup))
    return stages


def match_genes(
    gene_names: Sequence[str], table: pd.DataFrame, *, ensembl_ids: Sequence[str] | None = None
) -> GeneMatch:
    """Match each dataset gene to a row of a gene table, by symbol, case-insensitive symbol, alias or Ensembl id.

    The rules, tried in this order, each only for the genes still unmatched:

    1. ``'symbol'``: the name equals a symbol of the table (its index) exactly.
    2. ``'symbol_case'``: it equals a symbol ignoring case, and only one symbol does.
    3. ``'alias'``: it equals, ignoring case, an entry of exactly one row's ``aliases``; an alias shared by
       several rows, or that is (ignoring case) itself a symbol of the table, is never used.
    4. ``'ensembl'``: its Ensembl gene id (from ``ensembl_ids``, else the name itself; version suffix
       ignored) is in exactly one row's ``ensembl_ids``.
    5. ``'none'``: unmatched, position ``-1``.

    Parameters
    ----------
    gene_names
        The dataset's genes, e.g. ``adata.var_names`` or ``adata.var['gene_symbols']``.
    table
        A gene table indexed by unique symbols, from ``gene_descriptions`` or ``read_gene_descriptions``;
        the ``aliases`` and ``ensembl_ids`` columns are used where present.
    ensembl_ids
        Ensembl gene ids aligned with ``gene_names`` (e.g. ``adata.var['gene_ids']``); empty entries are skipped.

    Returns
    -------
    A :class:`GeneMatch` with each gene's row position, how it matched, the matched symbol and the coverage.
    """
    names = pd.Series(np.asarray(gene_names, dtype=str))
    if table.index.has_duplicates:
        msg = "The table's index (gene symbols) has duplicates; read it with read_gene_descriptions first."
        raise ValueError(msg)
    if ensembl_ids is not None and len(ensembl_ids) != len(names):
        msg = f"ensembl_ids has {len(ensembl_ids)} entries for {len(names)} genes; pass one id (or '') per gene."
        raise ValueError(msg)
    symbols = pd.Series(table.index.astype(str))
    positions = np.full(len(names), -1, dtype=np.int64)
    how = np.full(len(names), "none", dtype=object)
    for kind, query, lookup in _match_stages(names, symbols, table, ensembl_ids):
        todo = np.flatnonzero(positions < 0)
        found = query.iloc[todo].map(lookup)
        hit = found.notna().to_numpy()
        positions[todo[hit]] = found[hit].astype(np.int64).to_numpy()
        how[todo[hit]] = kind
    matched = np.where(positions >= 0, symbols.to_numpy()[np.maximum(positions, 0)], "").astype(object)
    coverage = {"n_genes": len(names), "n_matched": int((positions >= 0).sum())}
    coverage["fraction"] = coverage["n_matched"] / max(len(names), 1)
    coverage.update({kind: int((how == kind).sum()) for kind in MATCH_KINDS})
    return GeneMatch(names.to_numpy(dtype=object), positions, how, matched, coverage)


def gene_text(table: pd.DataFrame, template: str = DEFAULT_TEMPLATE, *, list_sep: str = "; ") -> pd.Series:
    """One text per gene from a template, GenePT-style, with empty fields dropped cleanly.

    Each field is replaced by the gene's value of that column (``{symbol}`` is the index); list columns
    (``aliases``, ``go_terms``, …) are joined with ``list_sep``. A field whose value is empty is dropped
    **together with the literal text just before it** (its label or separator), so the default
    ``"{symbol}: {name}. GO: {go_terms}"`` gives ``"CD14: CD14 molecule"`` for a gene without GO terms,
    never a dangling ``"GO: ."``. When the first fields are dropped, the separator in front of the first kept
    one loses its leading punctuation; the text after the last field is kept only if some field is.

    Parameters
    ----------
    table
        A gene table from ``gene_descriptions`` or ``read_gene_descriptions``.
    template
        Text with ``{column}`` fields: ``{symbol}``, ``{name}``, ``{aliases}``, ``{go_terms}``, ``{summary}`` or
        any other column of ``table``. Missing standard columns count as empty; fields take no format specs.
    list_sep
        Separator that replaces ``'|'`` in list columns.

    Returns
    -------
    A Series of strings (``''`` when every field is empty) indexed like ``table``, named ``'text'``.
    """
    pieces = list(string.Formatter().parse(template))
    out = pd.Series("", index=table.index, dtype=object)
    started = np.zeros(len(table), dtype=bool)
    for i, (literal, field, spec, conversion) in enumerate(pieces):
        if field is None:  # text after the last field
            out = out + np.where(started, literal, "")
            continue
        values = _field_values(table, field, spec, conversion, list_sep)
        present = (values != "").to_numpy()
        lead = literal if i == 0 else literal.lstrip(" .,;:-|")
        prefix = np.where(started, literal, lead)
        out = out + np.where(present, prefix + values.to_numpy(dtype=object), "")
        started |= present
    return pd.Series(out.to_numpy(dtype=object), index=table.index, name="text").str.strip()


def _field_values(table: pd.DataFrame, field: str, spec: str, conversion: str | None, list_sep: str) -> pd.Series:
    if spec or conversion or not field.isidentifier():
        msg = f"Template field {{{field}}} must be a plain column name, without format spec or conversion."
        raise ValueError(msg)
    if field == "symbol":
        return pd.Series(table.index.astype(str), index=table.index)
    if field not in table.columns:
        if field in COLUMNS:
            return pd.Series("", index=table.index)
        columns = ["symbol", *map(str, table.columns)]
        msg = f"Template field {{{field}}} is not a column of the table; columns: {columns}."
        raise ValueError(msg)
    values = table[field].fillna("").astype(str).str.strip()
    if field in LIST_COLUMNS:
        values = values.str.replace(SEP, list_sep, regex=False)
    return values
