from __future__ import annotations

import numpy as np
import pytest
import torch

from sc_llm.core.base.splits import fold_assignments, stratified_split
from sc_llm.core.fusion.network import FusionClassifier
from sc_llm.core.fusion.stacking import (
    StackedFusion,
    build_module,
    fit_expert_weights,
    fit_temperature,
    train_any_fusion,
    train_stacked_fusion,
)
from sc_llm.core.fusion.training import predict_proba, train_fusion

FAST = {"max_epochs": 40, "patience": 5, "lr": 1e-2}


def two_bit_data(n: int = 240, seed: int = 0):
    """Rep A carries bit 1 and rep B bit 2 of a 4-class label: only both together identify the class."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, n)
    a = rng.normal(size=(n, 8)).astype(np.float32)
    b = rng.normal(size=(n, 6)).astype(np.float32) * 5 + 10
    a[:, 0] += 3 * (codes % 2)
    b[:, 0] += 15 * (codes // 2)
    return [a, b], codes


def test_fold_assignments_are_stratified_and_seeded():
    codes = np.repeat([0, 1, 2], [50, 23, 3])
    folds = fold_assignments(codes, 5, seed=0)
    assert set(folds) == set(range(5))
    for c, n in ((0, 50), (1, 23)):
        counts = np.bincount(folds[codes == c], minlength=5)
        assert counts.max() - counts.min() <= 1 and counts.sum() == n
    assert len(set(folds[codes == 2])) == 3  # a class smaller than the folds: one cell per fold
    np.testing.assert_array_equal(folds, fold_assignments(codes, 5, seed=0))
    assert not np.array_equal(folds, fold_assignments(codes, 5, seed=1))
    with pytest.raises(ValueError, match="at least 2 per class"):
        fold_assignments(np.array([0, 0, 1]), 2, seed=0)
    with pytest.raises(ValueError, match="n_folds"):
        fold_assignments(codes, 1, seed=0)


def test_expert_weights_trust_the_informative_expert():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 600)
    right = rng.random(600) < 0.8
    guess = np.where(right, codes, (codes + rng.integers(1, 3, 600)) % 3)
    good = np.log(np.full((600, 3), 0.1))
    good[np.arange(600), guess] = np.log(0.8)  # says 0.8 and is right 80 % of the time: calibrated
    noise = np.log(rng.dirichlet(np.ones(3), 600))
    w = fit_expert_weights([good, noise], codes)
    assert w.shape == (2,) and (w >= 0).all()
    assert 0.7 < w[0] < 1.3 and w[1] < 0.1

    def loss(weights):
        z = torch.as_tensor(weights[0] * good + weights[1] * noise)
        return float(torch.nn.functional.cross_entropy(z, torch.as_tensor(codes)))

    assert loss(w) <= min(loss([1.0, 1.0]), loss([1.0, 0.0]), loss([0.5, 0.0])) + 1e-9
    with pytest.raises(ValueError, match="same cells"):
        fit_expert_weights([good, noise[:10]], codes)


def test_temperature_recovers_a_known_temperature_and_keeps_predictions():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 4)) * 3
    p = torch.softmax(torch.as_tensor(z / 2.0), 1).numpy()
    codes = np.array([rng.choice(4, p=row) for row in p])
    t = fit_temperature(z, codes)
    assert t == pytest.approx(2.0, rel=0.1)
    net = FusionClassifier([3], 4, temperature=t).eval()
    x = torch.randn(5, 3)
    torch.testing.assert_close(net(x) * t, net.head(net.features(x)))
    assert FusionClassifier(**net.config()).temperature == t
    with pytest.raises(ValueError, match="temperature"):
        FusionClassifier([3], 4, temperature=0.0)


def test_stacked_fusion_learns_what_neither_representation_knows_alone():
    reps, codes = two_bit_data(300)
    tr, te = stratified_split(codes, 0.25, seed=0)
    module, hist = train_stacked_fusion(
        [X[tr] for X in reps], codes[tr], 4, n_folds=3, architecture={"hidden": 16}, **FAST
    )
    assert isinstance(module, StackedFusion) and module.in_dims == [8, 6]
    assert len(hist["weights"]) == 2 and min(hist["weights"]) > 0.3  # both bits are needed
    # Bayes accuracy here is about 0.87 (each bit read right with probability 0.93); 3-fold members see 2/3 of it
    assert len(hist["member_epochs"]) == 6 and 0 <= hist["oof_loss"] and hist["oof_accuracy"] > 0.75
    assert (predict_proba(module, [X[te] for X in reps]).argmax(1) == codes[te]).mean() > 0.85
    # the forward pass is the weighted sum of each representation's mean member probabilities (in logs)
    x = [torch.as_tensor(X[te]) for X in reps]
    with torch.no_grad():
        experts = [
            torch.stack([torch.softmax(m(xi), 1) for m in ms]).mean(0).log()
            for ms, xi in zip(module.members, x, strict=True)
        ]
        expected = sum(float(w) * e for w, e in zip(module.weights, experts, strict=True))
        torch.testing.assert_close(module(*x), expected)
    # seeded: the same run twice gives the same weights; rebuilt from its config + state it predicts the same
    again, hist2 = train_stacked_fusion(
        [X[tr] for X in reps], codes[tr], 4, n_folds=3, architecture={"hidden": 16}, **FAST
    )
    assert hist2 == hist
    rebuilt = build_module(module.config())
    rebuilt.load_state_dict(module.state_dict())
    np.testing.assert_array_equal(
        predict_proba(rebuilt.eval(), [X[te] for X in reps]), predict_proba(again, [X[te] for X in reps])
    )


def test_concat_reproduces_the_papers_network_and_single_reps_are_plain_networks():
    reps, codes = two_bit_data(200)
    tr, va = stratified_split(codes, 0.2, seed=0)
    args = {"val_reps": [X[va] for X in reps], "val_codes": codes[va], "architecture": {"hidden": 16}, **FAST}
    old, old_hist = train_fusion([X[tr] for X in reps], codes[tr], 4, pretrain=False, **args)
    new, hist = train_any_fusion([X[tr] for X in reps], codes[tr], 4, fusion="concat", calibrate=False, **args)
    assert type(new) is FusionClassifier and hist["fusion"] == "concat" and hist["temperature"] == 1.0
    assert new.config() == old.config() and hist["best_epoch"] == old_hist["best_epoch"]
    for (k, v), v_old in zip(new.state_dict().items(), old.state_dict().values(), strict=True):
        assert torch.equal(v, v_old), k
    pre, _ = train_any_fusion([X[tr] for X in reps], codes[tr], 4, fusion="pretrained", calibrate=False, **args)
    pre_old, _ = train_fusion([X[tr] for X in reps], codes[tr], 4, pretrain=True, **args)
    for v, v_old in zip(pre.state_dict().values(), pre_old.state_dict().values(), strict=True):
        assert torch.equal(v, v_old)
    # calibration divides the logits by the temperature fitted on the validation cells, predictions unchanged
    cal, hist = train_any_fusion([X[tr] for X in reps], codes[tr], 4, fusion="concat", **args)
    assert hist["temperature"] == cal.temperature != 1.0
    np.testing.assert_array_equal(
        predict_proba(cal, args["val_reps"]).argmax(1), predict_proba(new, args["val_reps"]).argmax(1)
    )
    single, hist = train_any_fusion(
        [reps[0][tr]], codes[tr], 4, fusion="stacked", **{**args, "val_reps": [reps[0][va]]}
    )
    assert type(single) is FusionClassifier and hist["fusion"] == "single"
    with pytest.raises(ValueError, match="`fusion` must be one of"):
        train_any_fusion(reps, codes, 4, fusion="attention")
