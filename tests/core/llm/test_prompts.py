import pytest

from sc_llm.core.llm.prompts import PromptTemplates


def test_default_templates_split_around_the_sentence():
    t = PromptTemplates()
    before, after = t.prompt_parts("perturbation", num_genes=3, cell_type="B", perturbation="IFN-beta")
    assert "3 most expressed genes" in before and "Homo sapiens B control cell" in before and "IFN-beta" in before
    assert before.endswith("Control cell sentence: ") and after.startswith(".\nPerturbed cell sentence:")
    before, after = t.prompt_parts("conditional_generation", num_genes=5, cell_type="CD4 T")
    assert after is None and before.endswith("Cell sentence:") and "CD4 T cell" in before
    assert t.answer_parts() == (" ", ".")


def test_user_templates_roundtrip_and_validation():
    t = PromptTemplates(conditional_generation="Make a {organism} {cell_type}:", organism="Mus musculus")
    assert t.prompt_parts("conditional_generation", cell_type="B")[0] == "Make a Mus musculus B:"
    assert PromptTemplates.from_dict(t.to_dict()) == t
    with pytest.raises(ValueError, match="unknown slots"):
        PromptTemplates(conditional_generation="{tissue}")
    with pytest.raises(ValueError, match="exactly once"):
        PromptTemplates(sentence_answer="{cell_sentence} {cell_sentence}")
    with pytest.raises(ValueError, match="needs values"):
        PromptTemplates().prompt_parts("perturbation", num_genes=3, cell_type="B")
    with pytest.raises(ValueError, match="Unknown prompt template fields"):
        PromptTemplates.from_dict({"tissue": "x"})
