import numpy as np
import pytest

from sc_llm.core.llm.answer_parsing import final_answer, label_key, match_answer, match_answers, strip_reasoning

KANG = ["CD4 T cells", "CD14+ Monocytes", "B cells"]
PBMC = ["CD4+/CD45RA+/CD25- Naive T", "CD4+/CD45RO+ Memory", "CD8+ Cytotoxic T"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CD4 T cells", 0),
        ("cd4t", 0),  # abbreviation: case, spaces and the word "cells" do not matter
        ("CD4T-cell", 0),
        ('Final answer: "CD4 T-cells".', 0),
        ("<think>Could be B cells... LYZ and S100A8 say monocyte.</think>\nAnswer: **CD14+ Monocyte**.", 1),
        ("<thinking>\nB cells? no\n</thinking>CD14+ Monocytes", 1),
        ("Monocytes", 1),  # the answer inside exactly one candidate
        ("2", 1),
        ("(c)", 2),
        ("The cell is a B cell.", 2),
        ("This is a CD4 T cell rather than a B cell.", 0),  # several named: the first named wins
        ("Answer: B cels", 2),  # a close spelling
        ("I don't know", None),
        ("", None),
        ("<think>unterminated reasoning about B cells", None),  # cut off inside its reasoning
        ("4", None),  # no fourth candidate
        ("NK cells", None),
    ],
)
def test_match_answer_kang(text, expected):
    assert match_answer(text, KANG) == expected


def test_match_answer_prefers_the_most_specific_candidate():
    cands = ["T cells", "CD8 T cells", "NK cells"]
    assert match_answer("It looks like a CD8 T cell", cands) == 1
    assert match_answer("T cell", ["CD4 T cells", "CD8 T cells", "NK cells"]) is None  # ambiguous abbreviation


def test_match_answer_pbmc_labels_with_slashes_and_signs():
    assert match_answer("CD4+/CD45RO+ Memory", PBMC) == 1
    assert match_answer("answer: cd8+ cytotoxic t cell", PBMC) == 2
    assert match_answer("Naive T", PBMC) == 0


def test_helpers():
    assert strip_reasoning("<think>x</think>y") == " y"
    assert final_answer("blah\nAnswer: B cells\nbecause...") == "B cells"
    assert label_key("CD4 T cells") == label_key("cd4-T cell") == label_key("CD4T") == "cd4t"


def test_match_answers_falls_back_to_the_first_candidate_and_counts():
    index, mapped = match_answers(["B cells", "nonsense", None], [KANG, KANG, KANG])
    np.testing.assert_array_equal(index, [2, 0, 0])
    np.testing.assert_array_equal(mapped, [True, False, False])
    with pytest.raises(ValueError, match="answers"):
        match_answers(["x"], [KANG, KANG])
