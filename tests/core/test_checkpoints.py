import pytest

from sc_llm.core.checkpoints import checkpoint_kind


def test_checkpoint_kind_from_the_files(tmp_path):
    for name, files in {
        "lm": ["cell_lm.json"],
        "sc1": ["best_model.pt"],
        "sc2": ["args.json", "vocab.json"],
        "hf": ["config.json"],
    }.items():
        (tmp_path / name).mkdir()
        for f in files:
            (tmp_path / name / f).write_text("{}")
    assert checkpoint_kind(tmp_path / "lm") == "cell_lm"
    assert checkpoint_kind(tmp_path / "sc1") == checkpoint_kind(str(tmp_path / "sc2")) == "scgpt"
    assert checkpoint_kind(tmp_path / "hf") == "folder"
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert checkpoint_kind(tmp_path / "m.gguf") == "gguf"
    assert checkpoint_kind("llmrails/ember-v1") == "hub" and checkpoint_kind(object()) == "object"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint_kind(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="is a file"):
        checkpoint_kind(tmp_path / "lm" / "cell_lm.json")
