"""The shipped gene descriptions, the readers of user sources, gene matching and text templates."""

import gzip
import json

import pandas as pd
import pytest

import sc_llm as sl
from sc_llm.datasets._gene_descriptions import COLUMNS, DEFAULT_TEMPLATE, gene_text, match_genes


@pytest.fixture(scope="module")
def human():
    return sl.datasets.gene_descriptions("human")


@pytest.fixture(scope="module")
def mouse():
    return sl.datasets.gene_descriptions("mouse")


# --- the shipped tables ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "name"),
    [
        ("CD79A", "CD79a molecule"),
        ("MS4A1", "membrane spanning 4-domains A1"),
        ("GNLY", "granulysin"),
        ("NKG7", "natural killer cell granule protein 7"),
        ("CD14", "CD14 molecule"),
        ("LYZ", "lysozyme"),
        ("S100A8", "S100 calcium binding protein A8"),
    ],
)
def test_human_known_genes(human, symbol, name):
    row = human.loc[symbol]
    assert row["name"] == name
    assert row["gene_type"] == "protein-coding"
    assert row["ensembl_ids"].startswith("ENSG") and row["go_ids"].startswith("GO:")
    assert len(row["go_ids"].split("|")) == len(row["go_terms"].split("|"))


def test_human_table_shape_and_identifiers(human):
    assert human.index.name == "symbol" and human.index.is_unique
    assert tuple(human.columns) == COLUMNS
    assert len(human) == 65087
    assert (human["name"] != "").all()
    assert (human["go_ids"] != "").sum() == 20728
    cd79a = human.loc["CD79A"]
    assert cd79a["entrez_id"] == "973" and cd79a["ensembl_ids"] == "ENSG00000105369"
    assert set(cd79a["aliases"].split("|")) == {"IGA", "IGAlpha", "MB-1", "MB1"}  # the symbol itself is not an alias
    assert "CD20" in human.loc["MS4A1", "aliases"].split("|")
    assert "MT-ND3" in human.loc["ND3", "aliases"].split("|")  # HGNC's symbol of NCBI's ND3
    assert (human["summary"] == "").all()


def test_cd79a_go_terms(human):
    terms = human.loc["CD79A", "go_terms"].split("|")
    assert "B cell receptor signaling pathway" in terms
    assert "GO:0050853" in human.loc["CD79A", "go_ids"].split("|")
    assert "B cell receptor complex" in terms  # cellular component terms are there too


def test_go_definitions_and_source_metadata():
    table = sl.datasets.gene_descriptions(definitions=True)
    ids = table.loc["CD79A", "go_ids"].split("|")
    definitions = table.loc["CD79A", "go_definitions"].split("|")
    assert len(definitions) == len(ids)
    assert "cross-linking of an antigen receptor on a B cell" in definitions[ids.index("GO:0050853")]
    source = table.attrs["source"]
    assert "org.Hs.eg.db 3.16.0" in source["human"]["source"] and "GO.db 3.16.0" in source["go"]["source"]
    assert "CC BY 4.0" in source["go"]["licence"] and "public domain" in source["human"]["licence"]
    assert source["human"]["counts"]["genes"] == len(table)


def test_go_false_leaves_go_terms_empty():
    table = sl.datasets.gene_descriptions(go=False)
    assert tuple(table.columns) == COLUMNS
    assert (table["go_terms"] == "").all() and table.loc["CD79A", "go_ids"].startswith("GO:")


def test_mouse_genes(mouse):
    assert tuple(mouse.columns) == COLUMNS and mouse.index.is_unique and len(mouse) == 30523
    assert mouse.loc["Cd79a", "name"] == "CD79A antigen (immunoglobulin-associated alpha)"
    assert mouse.loc["Cd79a", "entrez_id"] == "12518"
    assert "Cd20" in mouse.loc["Ms4a1", "aliases"].split("|")
    assert {"Lyz2", "Nkg7", "Cd14", "S100a8", "Ptprc"} <= set(mouse.index)
    # no offline source has mouse GO annotations or Ensembl ids: the columns are there, empty, and say so
    assert (mouse["go_ids"] == "").all() and (mouse["ensembl_ids"] == "").all()
    assert "no GO annotations" in mouse.attrs["source"]["mouse"]["missing"]


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"organism": "rat"}, "'human', 'mouse'"), ({"go": False, "definitions": True}, "go=True")]
)
def test_gene_descriptions_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sl.datasets.gene_descriptions(**kwargs)


def test_organism_ignores_case():
    assert "Cd79a" in sl.datasets.gene_descriptions("Mouse", go=False).index


# --- matching -------------------------------------------------------------------------------------------------


def test_match_rules(human):
    genes = ["CD79A", "cd79a", "IGJ", "ENSG00000170458.14", "CD20", "SARS", "MIF", "ENSG00000236362", "NOT_A_GENE"]
    result = match_genes(genes, human)
    frame = result.to_frame()
    assert frame["how"].tolist() == [
        *("symbol", "symbol_case", "alias", "ensembl"),
        *("none", "none", "symbol", "none", "none"),
    ]
    assert frame["matched"].tolist() == ["CD79A", "CD79A", "JCHAIN", "CD14", "", "", "MIF", "", ""]
    assert result.positions[0] == human.index.get_loc("CD79A") and result.positions[-1] == -1
    # ambiguous, so unmatched: CD20 is an alias of MS4A1 and of KRT20, SARS of SARS1 and SARS2, and
    # ENSG00000236362 is the Ensembl id of six GAGE genes; MIF is a symbol and an alias of S100A8: the symbol wins
    aliases = human["aliases"].str.split("|")
    assert set(human.index[aliases.map(lambda a: "CD20" in a)]) == {"MS4A1", "KRT20"}
    assert set(human.index[aliases.map(lambda a: "SARS" in a)]) == {"SARS1", "SARS2"}
    assert "MIF" in aliases["S100A8"]
    assert (human["ensembl_ids"].str.split("|").map(lambda e: "ENSG00000236362" in e)).sum() == 6
    assert result.coverage == {
        "n_genes": 9,
        "n_matched": 5,
        "fraction": 5 / 9,
        "symbol": 2,
        "symbol_case": 1,
        "alias": 1,
        "ensembl": 1,
        "none": 4,
    }


def test_match_with_ensembl_column(human):
    result = match_genes(["oldname", "CD14"], human, ensembl_ids=["ENSG00000105369.9", ""])
    assert result.how.tolist() == ["ensembl", "symbol"] and result.matched.tolist() == ["CD79A", "CD14"]
    with pytest.raises(ValueError, match="one id"):
        match_genes(["CD14"], human, ensembl_ids=[])


def test_case_and_alias_ambiguity_in_a_user_table():
    table = sl.datasets.read_gene_descriptions(
        pd.DataFrame(
            {
                "symbol": ["Abc1", "ABC1", "Xyz", "Uvw", "Rst"],
                "aliases": ["", "", "shared|only-xyz", "SHARED", "xyz"],
            }
        )
    )
    result = match_genes(["abc1", "ABC1", "shared", "ONLY-XYZ", "Xyz"], table)
    # 'abc1' fits two symbols ignoring case; 'shared' is an alias of two rows; 'xyz' is Rst's alias but Xyz's symbol
    assert result.how.tolist() == ["none", "symbol", "none", "alias", "symbol"]
    assert result.matched.tolist() == ["", "ABC1", "", "Xyz", "Xyz"]


def test_mouse_symbols_match_case_insensitively(mouse):
    result = match_genes(["Cd79a", "CD79A", "cd20"], mouse)
    assert result.how.tolist() == ["symbol", "symbol_case", "alias"]
    assert result.matched.tolist() == ["Cd79a", "Cd79a", "Ms4a1"]


def test_coverage_pbmc68k_raw(human):
    genes = sl.datasets.pbmc68k_reduced().raw.var_names
    result = match_genes(genes, human)
    cov = result.coverage
    assert cov["n_genes"] == 765 and cov["n_matched"] == 751
    assert cov["symbol"] == 700 and cov["alias"] == 51 and cov["none"] == 14
    with_go = (human["go_ids"].to_numpy()[result.positions[result.positions >= 0]] != "").sum()
    assert with_go == 737
    assert result.matched[list(genes).index("IGJ")] == "JCHAIN"  # an old symbol, found as an alias


def test_coverage_kang2018(human):
    result = match_genes(sl.datasets.kang2018().var_names, human)
    cov = result.coverage
    assert cov["n_genes"] == 6998 and cov["n_matched"] == 6369
    assert cov["symbol"] == 5958 and cov["alias"] == 411 and cov["none"] == 629
    unmatched = result.genes[result.positions < 0]
    # almost all unmatched genes are GENCODE clone names (RP11-…, AC012345.1) that NCBI Gene does not use
    clone = pd.Index(unmatched).str.match(r"^(RP\d+-|CT[ABCD]-|A[CLP]\d{6}\.\d)")
    assert clone.sum() >= 590


def test_match_refuses_duplicate_symbols():
    with pytest.raises(ValueError, match="duplicates"):
        match_genes(["A"], pd.DataFrame({"name": ["x", "y"]}, index=["A", "A"]))


# --- readers --------------------------------------------------------------------------------------------------

SUMMARIES = {"CD79A": "This gene encodes the Ig-alpha protein of the B-cell antigen component.", "LYZ": "Lysozyme."}


def check_summaries(table):
    assert table.index.name == "symbol" and tuple(table.columns) == COLUMNS
    assert table.loc["CD79A", "summary"] == SUMMARIES["CD79A"] and table.loc["LYZ", "name"] == ""


def test_read_genept_json(tmp_path):
    path = tmp_path / "NCBI_summary_of_genes.json"
    path.write_text(json.dumps(SUMMARIES))
    check_summaries(sl.datasets.read_gene_descriptions(path))
    gz = tmp_path / "summaries.json.gz"
    gz.write_bytes(gzip.compress(json.dumps(SUMMARIES).encode()))
    check_summaries(sl.datasets.read_gene_descriptions(str(gz)))


def test_read_dict_and_dataframe():
    check_summaries(sl.datasets.read_gene_descriptions(SUMMARIES))
    frame = pd.DataFrame({"summary": list(SUMMARIES.values())}, index=list(SUMMARIES))
    check_summaries(sl.datasets.read_gene_descriptions(frame))


@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t"), (".tsv.gz", "\t")])
def test_read_table_with_text_columns(tmp_path, suffix, sep):
    frame = pd.DataFrame(
        {"symbol": [" CD79A", "LYZ"], "name": ["CD79a molecule", "lysozyme"], "uniprot_text": ["Ig-alpha, B cells", ""]}
    )
    path = tmp_path / f"genes{suffix}"
    frame.to_csv(path, sep=sep, index=False)
    table = sl.datasets.read_gene_descriptions(path)
    assert list(table.index) == ["CD79A", "LYZ"] and tuple(table.columns) == (*COLUMNS, "uniprot_text")
    assert table.loc["CD79A", "name"] == "CD79a molecule" and table.loc["CD79A", "uniprot_text"] == "Ig-alpha, B cells"
    assert table.loc["LYZ", "uniprot_text"] == "" and table.loc["LYZ", "go_terms"] == ""


@pytest.mark.parametrize(
    ("name", "content", "error", "match"),
    [
        ("empty.json", b"", ValueError, "is empty"),
        ("cut.json", b'{"CD79A": "B cell', ValueError, "Could not read .*cut.json.* as JSON"),
        ("list.json", b'["CD79A"]', ValueError, "holds a JSON list; expected an object"),
        ("nested.json", b'{"CD79A": {"text": "x"}}', ValueError, "not strings"),
        ("none.json", b"{}", ValueError, "holds no genes"),
        ("latin1.json", '{"CD79A": "caf\u00e9"}'.encode("latin-1"), ValueError, "UTF-8"),
        ("bad.json.gz", b"not gzip at all", ValueError, "as gzipped JSON"),
        ("nosymbol.csv", b"gene,text\nCD79A,x\n", ValueError, "no 'symbol' column .*'gene', 'text'"),
        ("header.csv", b"symbol,text\n", ValueError, "holds no genes"),
        ("blank.tsv", b"symbol\ttext\n\tx\n", ValueError, "1 rows without a symbol"),
        ("twice.csv", b"symbol,text\nCD79A,x\nCD79A,y\n", ValueError, "repeats 1 symbols"),
        ("genes.xlsx", b"PK", ValueError, "Cannot tell the format .*genes.xlsx"),
    ],
)
def test_read_bad_files(tmp_path, name, content, error, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error, match=match):
        sl.datasets.read_gene_descriptions(path)


def test_read_missing_file_and_bad_types(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        sl.datasets.read_gene_descriptions(tmp_path / "nope.json")
    with pytest.raises(TypeError, match="path, a dict"):
        sl.datasets.read_gene_descriptions(["CD79A"])
    with pytest.raises(ValueError, match="not strings"):
        sl.datasets.read_gene_descriptions({"CD79A": 1})
    with pytest.raises(ValueError, match="no 'symbol' column"):
        sl.datasets.read_gene_descriptions(pd.DataFrame({"text": ["x"]}))


# --- text from templates --------------------------------------------------------------------------------------


def test_default_template(human):
    texts = gene_text(human.loc[["CD79A", "TRNAA-AGC"]])
    assert texts.name == "text" and list(texts.index) == ["CD79A", "TRNAA-AGC"]
    assert texts["CD79A"].startswith("CD79A: CD79a molecule. GO: adaptive immune response; B cell differentiation")
    assert texts["TRNAA-AGC"] == "TRNAA-AGC: transfer RNA alanine (anticodon AGC)"  # no GO terms: no "GO:"
    assert DEFAULT_TEMPLATE == "{symbol}: {name}. GO: {go_terms}"


def test_template_fields_and_empty_values():
    table = sl.datasets.read_gene_descriptions(
        pd.DataFrame(
            {
                "symbol": ["A", "B", "C"],
                "name": ["alpha", "", ""],
                "aliases": ["A1|A2", "", ""],
                "summary": ["Sum A.", "Sum B.", ""],
            }
        )
    )
    texts = gene_text(table, "{name}; aliases: {aliases}. Summary: {summary} [{symbol}]", list_sep=", ")
    assert texts.tolist() == ["alpha; aliases: A1, A2. Summary: Sum A. [A]", "Summary: Sum B. [B]", "[C]"]
    assert gene_text(table, "Gene {name}.").tolist() == ["Gene alpha.", "", ""]
    assert gene_text(table, "{summary}").tolist() == ["Sum A.", "Sum B.", ""]


def test_template_errors(human):
    with pytest.raises(ValueError, match=r"\{uniprot\} is not a column"):
        gene_text(human.head(2), "{symbol}: {uniprot}")
    with pytest.raises(ValueError, match="plain column name"):
        gene_text(human.head(2), "{name!r}")
