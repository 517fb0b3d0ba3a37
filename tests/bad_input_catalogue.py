"""A catalogue of bad or unusual inputs to the generative half, run the way a new user would meet them.

Each case calls a public function with one bad input and is classified by what happened:

- ``error``: sc_llm raised the error itself (the innermost frame of the exception is in sc_llm's source), its
  message names the problem; the input AnnData is unchanged;
- ``warning``: the call succeeded and sc_llm warned (cases whose input is unusual but valid);
- ``library``: an exception raised inside another library reached the user unexplained;
- ``silent``: the call returned without a word although its input was bad.

``tests/test_bad_input_catalogue.py`` requires 0 ``library`` and 0 ``silent`` outcomes and checks that
``docs/errors.md`` (written by ``scripts/build_errors_page.py``) lists the messages of today's code.
"""

from __future__ import annotations

import re
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

import sc_llm as sl

SRC = Path(sl.__file__).resolve().parent
KW = {"condition_key": "condition", "control": "control", "perturbation": "stimulated", "cell_type_key": "cell_type"}


@dataclass
class Case:
    """One bad input: its class (the issue's numbering), a label, the call, and whether it should warn."""

    klass: str
    label: str
    call: Callable[[Any], Any]
    expect: str = "error"


@dataclass
class Outcome:
    """What a case did: its kind (``error``, ``warning``, ``library``, ``silent``) and the message."""

    case: Case
    kind: str
    message: str
    changed: bool = False


def build_inputs(folder: Path) -> dict[str, Any]:
    """The data every case starts from: 120 Kang cells with sentences, two tiny saved cell LMs, a decoder."""
    kang = sl.datasets.kang2018()
    kang = kang[np.random.default_rng(0).choice(kang.n_obs, 120, replace=False)].copy()
    sl.pp.cell_sentences(kang, n_genes=12)
    fast = {"epochs": 1, "batch_size": 8, "progress": False, "cpu_threads": 1}
    models = {}
    for name, task in [("perturbation", "perturbation"), ("generation", "conditional_generation")]:
        lm = sl.tl.CellLM.from_scratch(
            list(kang.var_names),
            cell_types=kang.obs["cell_type"].unique(),
            perturbations=["stimulated"],
            hidden_size=16,
            num_layers=1,
            device="cpu",
        )
        models[name] = lm.fit(kang, task=task, n_genes=6, config=fast).save(folder / name)
    decoded = kang.copy()
    sl.tl.fit_sentence_decoder(decoded)
    ctrl = kang[kang.obs["condition"] == "control"].copy()
    ctrl.write_h5ad(folder / "controls.h5ad")
    return {"kang": kang, "models": models, "decoder": decoded.uns["sentence_decoder"], "folder": folder, "ctrl": ctrl}


def _with_x(adata, X):
    out = adata.copy()
    out.X = X
    return out


def _inf(inp):
    X = inp["kang"].X.toarray()
    X[3, 5] = np.inf
    return _with_x(inp["kang"], sparse.csr_matrix(X))


def _scaled(inp):
    return _with_x(inp["kang"], inp["kang"].X.toarray() - 0.5)


def _counts(inp):
    return _with_x(inp["kang"], sparse.csr_matrix(np.round(np.expm1(inp["kang"].X.toarray()) * 10)))


def _query(adata):
    return adata[adata.obs["condition"] == "control"].copy()


def _perturb(adata, **kw):
    return sl.tl.perturb(adata, **KW, query=_query(adata), **{"method": "mean_shift", **kw})


CASES = [
    Case("1 non-finite", "perturb: one inf in X", lambda i: _perturb(_inf(i))),
    Case(
        "1 non-finite",
        "compare_perturbation: one inf",
        lambda i: sl.tl.compare_perturbation(_inf(i), **KW, methods=["control"]),
    ),
    Case("1 non-finite", "fit_sentence_decoder: one inf", lambda i: sl.tl.fit_sentence_decoder(_inf(i))),
    Case("1 non-finite", "r2_mean: one inf", lambda i: sl.metrics.r2_mean(_inf(i), i["kang"])),
    Case(
        "1 non-finite",
        "energy_distance: NaN array",
        lambda i: sl.metrics.energy_distance(np.full((3, 2), np.nan), np.ones((3, 2))),
    ),
    Case("2 scale", "perturb: scaled X", lambda i: _perturb(_scaled(i))),
    Case(
        "2 scale",
        "compare_perturbation: scaled X",
        lambda i: sl.tl.compare_perturbation(_scaled(i), **KW, methods=["control"]),
    ),
    Case("2 scale", "perturb: raw counts", lambda i: _perturb(_counts(i)), expect="warning"),
    Case(
        "2 scale",
        "cell_sentences: boolean X",
        lambda i: sl.pp.cell_sentences(_with_x(i["kang"], i["kang"].X.toarray() > 0)),
    ),
    Case(
        "3 labels",
        "predict_perturbation: ghost_drug",
        lambda i: sl.tl.CellLM.load(i["models"]["perturbation"]).predict_perturbation(
            i["ctrl"], perturbation="ghost_drug", progress=False
        ),
    ),
    Case(
        "3 labels",
        "generate_cells: Neuron",
        lambda i: sl.tl.generate_cells(i["models"]["generation"], cell_type="Neuron", n_cells=2, progress=False),
    ),
    Case(
        "3 labels",
        "generate_cells: cd4t",
        lambda i: sl.tl.generate_cells(i["models"]["generation"], cell_type="cd4t", n_cells=2, progress=False),
    ),
    Case(
        "3 labels",
        "generate_cells: a perturbation model",
        lambda i: sl.tl.generate_cells(i["models"]["perturbation"], cell_type="CD4T", n_cells=2, progress=False),
    ),
    Case(
        "3 labels",
        "jobs.generate_cells: Neuron",
        lambda i: sl.jobs.generate_cells(i["models"]["generation"], i["folder"] / "s3", cell_type="Neuron", n_cells=2),
    ),
    Case("5 overwrite", "compare_perturbation: key_added over .uns", lambda i: _overwrite(i), expect="warning"),
    Case("6 options", "perturb: n_comp typo", lambda i: _perturb(i["kang"], method="pca_shift", n_comp=5)),
    Case("6 options", "perturb: n_comps to mean_shift", lambda i: _perturb(i["kang"], n_comps=5)),
    Case("6 options", "perturb(llm): lr=-1", lambda i: _perturb(i["kang"], method="llm", lr=-1)),
    Case(
        "7 metrics",
        "perturbation_scores: n_de=-5",
        lambda i: sl.metrics.perturbation_scores(i["kang"], i["kang"], i["kang"], n_de=-5),
    ),
    Case(
        "7 metrics",
        "perturbation_scores: n_comps=0",
        lambda i: sl.metrics.perturbation_scores(i["kang"], i["kang"], i["kang"], n_comps=0),
    ),
    Case(
        "7 metrics",
        "energy_distance: other var_names",
        lambda i: sl.metrics.energy_distance(i["kang"][:, list(i["kang"].var_names[::-1])].copy(), i["kang"]),
    ),
    Case(
        "7 metrics",
        "de_genes: too few cells",
        lambda i: sl.metrics.de_genes(i["kang"][:2].copy(), i["kang"][2:4].copy()),
    ),
    Case("8 files", "CellLM.load: truncated cell_lm.json", lambda i: sl.tl.CellLM.load(_damaged(i, "cell_lm.json"))),
    Case(
        "8 files", "CellLM.load: truncated weights", lambda i: sl.tl.CellLM.load(_damaged(i, "model/model.safetensors"))
    ),
    Case("8 files", "read_cells: truncated manifest", lambda i: sl.jobs.read_cells(_damaged_store(i))),
    Case(
        "10 small",
        "generate_cells: n_cells=2.5",
        lambda i: sl.tl.generate_cells(i["models"]["generation"], cell_type="CD4T", n_cells=2.5),
    ),
    Case(
        "10 small",
        "generate_cells: top_k=-1",
        lambda i: sl.tl.generate_cells(i["models"]["generation"], cell_type="CD4T", n_cells=2, top_k=-1),
    ),
    Case(
        "10 small",
        "generate_cells: batch_size=0",
        lambda i: sl.tl.generate_cells(i["models"]["generation"], cell_type="CD4T", n_cells=2, batch_size=0),
    ),
    Case(
        "10 small",
        "generate_cells: seed=-1",
        lambda i: sl.tl.generate_cells(i["models"]["generation"], cell_type="CD4T", n_cells=2, seed=-1),
    ),
    Case("10 small", "CellLM.from_scratch: 'HLA DRA'", lambda i: sl.tl.CellLM.from_scratch(["CD3D", "HLA DRA"])),
    Case("10 small", "CellLM.from_scratch: no genes", lambda i: sl.tl.CellLM.from_scratch([])),
    Case(
        "10 small",
        "decode_sentences: numeric column",
        lambda i: sl.tl.decode_sentences(_numbers(i), sentence_key="n", decoder=i["decoder"]),
    ),
    Case(
        "10 small",
        "compare_annotators: seeds=['a']",
        lambda i: sl.tl.compare_annotators(i["kang"], label_key="cell_type", use_reps=["X_pca"], seeds=["a"]),
    ),
    Case("10 small", "perturb: seed=-1", lambda i: _perturb(i["kang"], seed=-1)),
    Case("10 small", "fit_sentence_decoder: seed=-1", lambda i: sl.tl.fit_sentence_decoder(i["kang"].copy(), seed=-1)),
    Case(
        "10 small",
        "compare_perturbation: seed=-1",
        lambda i: sl.tl.compare_perturbation(i["kang"].copy(), **KW, methods=["control"], seed=-1),
    ),
    Case(
        "10 small",
        "jobs.predict_perturbation: batch_size=0",
        lambda i: sl.jobs.predict_perturbation(
            i["folder"] / "controls.h5ad",
            i["folder"] / "s10",
            model=i["models"]["perturbation"],
            perturbation="stimulated",
            batch_size=0,
        ),
    ),
    Case("11 leftovers", "cell_sentences: gene named <pad>", lambda i: sl.pp.cell_sentences(_renamed(i, "<pad>"))),
    Case(
        "11 leftovers",
        "embed(scgpt): sentence_key given",
        lambda i: sl.tl.embed(i["kang"], model="missing-scgpt", encoder="scgpt", sentence_key="other"),
    ),
]


def _overwrite(inp):
    adata = inp["kang"].copy()
    adata.uns["mine"] = {"keep": 1}
    sl.tl.compare_perturbation(adata, **KW, methods=["control"], held_out=["CD4T"], key_added="mine")


def _damaged(inp, rel: str) -> Path:
    import shutil

    folder = inp["folder"] / f"damaged-{rel.replace('/', '-')}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(inp["models"]["generation"], folder)
    file = folder / rel
    file.write_bytes(file.read_bytes()[: max(1, file.stat().st_size // 3)])
    return folder


def _damaged_store(inp) -> Path:
    store = sl.jobs.generate_cells(inp["models"]["generation"], inp["folder"] / "s8", cell_type="CD4T", n_cells=2)
    (store.path / "manifest.json").write_text("{")
    return store.path


def _numbers(inp):
    adata = inp["kang"].copy()
    adata.obs["n"] = np.arange(adata.n_obs)
    return adata


def _renamed(inp, name: str):
    adata = inp["kang"].copy()
    adata.var_names = [name, *adata.var_names[1:]]
    return adata


def _raised_by_sc_llm(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(SRC)


def _fingerprint(adata) -> tuple:
    return (tuple(adata.obs.columns), tuple(adata.uns), tuple(adata.obsm), adata.X.sum() if adata.X is not None else 0)


def run_case(case: Case, inputs: dict[str, Any]) -> Outcome:
    """Run one case in a clean warning state and classify what happened."""
    before = _fingerprint(inputs["kang"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            case.call(inputs)
        except Exception as e:  # noqa: BLE001  (the point is to see any exception, whatever its type)
            kind = "error" if _raised_by_sc_llm(e) else "library"
            out = Outcome(case, kind, f"{type(e).__name__}: {e}")
        else:
            said = [w for w in caught if w.category is UserWarning]
            out = Outcome(case, "warning" if said else "silent", str(said[0].message) if said else "")
    out.changed = _fingerprint(inputs["kang"]) != before
    return out


def run_catalogue(inputs: dict[str, Any]) -> list[Outcome]:
    """Every case of :data:`CASES`, in order."""
    return [run_case(case, inputs) for case in CASES]


def errors_page(outcomes: list[Outcome], folder: Path) -> str:
    """The markdown of ``docs/errors.md``: each class's inputs and the message sc_llm gives."""
    lines = [
        "# Errors you may meet",
        "",
        "What sc_llm says when the input of a generative tool is wrong, generated from the messages themselves",
        "(`python scripts/build_errors_page.py`; `tests/test_bad_input_catalogue.py` keeps this page true). Every",
        "failing call leaves your AnnData unchanged.",
        "",
    ]
    klass = None
    for o in outcomes:
        if o.case.klass != klass:
            klass = o.case.klass
            lines += [f"## {klass.split(' ', 1)[1].capitalize()}", ""]
        message = re.sub(r"\s+", " ", o.message.replace(str(folder), "<folder>"))
        message = re.sub(r"/tmp/[\w/.-]+", "<path>", message)
        message = re.sub(r"line \d+ column \d+ \(char \d+\)", "line …", message)  # where a truncation cuts
        lines += [f"- **{o.case.label}** ({o.kind}): {message}", ""]
    return "\n".join(lines).rstrip() + "\n"
