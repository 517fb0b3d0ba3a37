import json

import pytest

from sc_llm.core.base.atomic import atomic_file, atomic_folder, write_json, write_text


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_file_replaces_only_on_success(tmp_path):
    path = tmp_path / "x.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert path.read_text() == "old" and names(tmp_path) == ["x.txt"]  # no temporary file left
    with atomic_file(path, suffix=".h5ad") as tmp:
        assert tmp.name.startswith(".x.txt.") and tmp.suffix == ".h5ad" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert path.read_text() == "new" and names(tmp_path) == ["x.txt"]


def test_write_json_is_sorted_and_indented_by_default(tmp_path):
    write_json(tmp_path / "a" / "m.json", {"b": 1, "a": [1, 2]})  # parent folders are created
    text = (tmp_path / "a" / "m.json").read_text()
    assert text == json.dumps({"a": [1, 2], "b": 1}, indent=1, sort_keys=True)
    write_json(tmp_path / "u.json", {"é": "x"}, indent=None, sort_keys=False, ensure_ascii=False)
    assert (tmp_path / "u.json").read_text() == '{"é": "x"}'


def test_atomic_folder_swaps_a_whole_folder_or_nothing(tmp_path):
    folder = tmp_path / "model"
    with atomic_folder(folder) as tmp:
        assert tmp.is_dir() and not any(tmp.iterdir())
        (tmp / "weights").write_text("v1")
    with pytest.raises(KeyError), atomic_folder(folder) as tmp:
        (tmp / "weights").write_text("v2-partial")
        raise KeyError
    assert (folder / "weights").read_text() == "v1" and names(tmp_path) == ["model"]
    with atomic_folder(folder) as tmp:
        (tmp / "other").write_text("v2")
    assert names(folder) == ["other"] and names(tmp_path) == ["model"]  # the old one is gone
