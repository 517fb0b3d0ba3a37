import numpy as np

from sc_llm.core.base.identity import checksum, fingerprint_folder, hash_strings, model_identity, sha256_file


def test_model_identity_of_a_folder_a_file_and_a_hub_id(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    ident = model_identity(folder)
    assert ident == {"id": str(folder.resolve()), "revision": None, "fingerprint": fingerprint_folder(folder)}
    (folder / "config.json").write_text('{"a": 1}')
    assert model_identity(folder)["fingerprint"] != ident["fingerprint"]  # any edit changes the identity
    gguf = folder / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert model_identity(gguf)["fingerprint"] == fingerprint_folder(gguf) != fingerprint_folder(folder)
    snapshot = tmp_path / ("a" * 40)
    snapshot.mkdir()
    assert model_identity(snapshot)["revision"] == "a" * 40  # a hub cache snapshot is named after its commit
    assert model_identity("org/model", revision="v1") == {"id": "org/model", "revision": "v1", "fingerprint": None}


def test_hashes_tell_inputs_apart(tmp_path):
    assert hash_strings(["ab", "c"]) != hash_strings(["a", "bc"])
    assert checksum(np.zeros(3, np.float32)) != checksum(np.zeros(3, np.float64))
    (tmp_path / "f").write_bytes(b"x" * 3_000_000)
    assert len(sha256_file(tmp_path / "f")) == 64
