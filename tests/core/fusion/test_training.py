from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from sc_llm.core.base.splits import stratified_split
from sc_llm.core.fusion.network import FusionClassifier
from sc_llm.core.fusion.training import (
    balanced_class_weights,
    choose_branch_weights,
    init_from_branches,
    predict_proba,
    train_classifier,
    train_fusion,
)


def two_bit_data(n: int = 240, seed: int = 0):
    """Rep A carries bit 1 and rep B bit 2 of a 4-class label: only both together identify the class."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, n)
    a = rng.normal(size=(n, 8)).astype(np.float32)
    b = rng.normal(size=(n, 6)).astype(np.float32) * 5 + 10  # different scale and offset
    a[:, 0] += 3 * (codes % 2)
    b[:, 0] += 15 * (codes // 2)
    return [a, b], codes


def test_forward_shapes_and_single_rep():
    torch.manual_seed(0)
    net = FusionClassifier([8, 6], 4, hidden=16, dropout=0.1)
    out = net(torch.randn(5, 8), torch.randn(5, 6))
    assert out.shape == (5, 4)
    assert net.head.in_features == 32
    single = FusionClassifier([8], 3, hidden=16)
    assert single(torch.randn(2, 8)).shape == (2, 3)
    config = single.config()
    assert {k: config[k] for k in ("in_dims", "n_classes", "hidden")} == {"in_dims": [8], "n_classes": 3, "hidden": 16}
    rebuilt = FusionClassifier(**config)
    assert rebuilt.config() == config


def test_forward_rejects_wrong_inputs():
    net = FusionClassifier([8, 6], 4, hidden=16)
    with pytest.raises(ValueError, match="Expected 2 representation"):
        net(torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"shape \(batch, 6\)"):
        net(torch.randn(5, 8), torch.randn(5, 7))
    with pytest.raises(ValueError, match="at least 2 classes"):
        FusionClassifier([8], 1)
    with pytest.raises(ValueError, match="in_dims"):
        FusionClassifier([], 3)


def test_differentiable_wrt_inputs():
    torch.manual_seed(0)
    net = FusionClassifier([8, 6], 4, hidden=16).eval()
    a = torch.randn(3, 8, requires_grad=True)
    b = torch.randn(3, 6, requires_grad=True)
    net(a, b)[:, 2].sum().backward()
    assert a.grad is not None and b.grad is not None
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_representation_scaling_keeps_relative_feature_scales():
    (a, b), _ = two_bit_data()
    b[:, 1] *= 10
    net = FusionClassifier([8, 6], 4, hidden=16)  # scaling="representation"
    net.set_input_scaling([a, b])
    np.testing.assert_allclose(net.mean_1.numpy(), b.mean(0), rtol=1e-5)
    scale = net.scale_1.numpy()
    np.testing.assert_allclose(scale, np.sqrt(b.var(0).mean()), rtol=1e-4)
    z = (b - net.mean_1.numpy()) / scale
    assert z.var(0).mean() == pytest.approx(1.0, rel=1e-4)
    assert z[:, 1].var() > 10 * z[:, 2].var()


def test_input_scaling_standardises_inside_the_module():
    torch.manual_seed(0)
    (a, b), _ = two_bit_data()
    net = FusionClassifier([8, 6], 4, hidden=16, scaling="feature").eval()
    net.set_input_scaling([a, b])
    np.testing.assert_allclose(net.mean_1.numpy(), b.mean(0), rtol=1e-5)
    np.testing.assert_allclose(net.scale_1.numpy(), b.std(0), rtol=1e-4)
    # the same network without scaling, fed standardised inputs, gives the same logits
    plain = FusionClassifier([8, 6], 4, hidden=16, scaling="feature").eval()
    plain.load_state_dict(
        {k: v for k, v in net.state_dict().items() if not k.startswith(("mean_", "scale_"))}, strict=False
    )
    za, zb = (a - a.mean(0)) / a.std(0), (b - b.mean(0)) / b.std(0)
    with torch.no_grad():
        expected = plain(torch.from_numpy(za), torch.from_numpy(zb))
        got = net(torch.from_numpy(a), torch.from_numpy(b))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_stratified_split_keeps_every_class_on_both_sides():
    codes = np.array([0] * 50 + [1] * 10 + [2] * 2)
    tr, va = stratified_split(codes, 0.2, seed=3)
    assert len(np.intersect1d(tr, va)) == 0
    assert len(tr) + len(va) == len(codes)
    for c, n_val in [(0, 10), (1, 2), (2, 1)]:
        assert (codes[va] == c).sum() == n_val
        assert (codes[tr] == c).sum() == (codes == c).sum() - n_val
    _, va2 = stratified_split(codes, 0.2, seed=3)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(codes, 0.2, seed=4)[1])
    with pytest.raises(ValueError, match="at least 2 per class"):
        stratified_split(np.array([0, 0, 1]), 0.5, seed=0)


def test_balanced_class_weights():
    codes = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(balanced_class_weights(codes, 3), [4 / 9, 4 / 3, 0.0], rtol=1e-6)


def test_training_learns_the_fusion_and_is_reproducible():
    reps, codes = two_bit_data(320)
    tr, va = np.arange(240), np.arange(240, 320)

    def fit(seed):
        torch.manual_seed(seed)
        net = FusionClassifier([8, 6], 4, hidden=16, dropout=0.1)
        hist = train_classifier(
            net,
            [X[tr] for X in reps],
            codes[tr],
            val_reps=[X[va] for X in reps],
            val_codes=codes[va],
            max_epochs=60,
            patience=10,
            batch_size=32,
            lr=1e-2,
            seed=seed,
        )
        return net, hist

    net, hist = fit(0)
    acc = (predict_proba(net, [X[va] for X in reps]).argmax(1) == codes[va]).mean()
    assert acc > 0.8  # bit 1 is separated by 3 sd: the Bayes accuracy is about 0.93
    assert not net.training
    assert hist["n_epochs"] == len(hist["train_loss"]) == len(hist["val_loss"])
    assert hist["best_epoch"] == int(np.argmin(hist["val_loss"])) + 1
    assert hist["device"] == "cpu"
    # the best weights were restored: the validation loss now is the best one recorded
    logits = net(*[torch.from_numpy(X[va]) for X in reps])
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(codes[va]).long())
    assert float(loss.detach()) == pytest.approx(min(hist["val_loss"]), rel=1e-4)

    net2, hist2 = fit(0)
    assert hist2["train_loss"] == hist["train_loss"]
    for (k, v), v2 in zip(net.state_dict().items(), net2.state_dict().values(), strict=True):
        assert torch.equal(v, v2), k


def test_training_leaves_global_state_alone():
    reps, codes = two_bit_data(80)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    net = FusionClassifier([8, 6], 4, hidden=8)
    torch.manual_seed(123)
    train_classifier(net, reps, codes, max_epochs=2, seed=5)
    assert torch.equal(torch.rand(1), expected_next)
    assert torch.get_num_threads() == threads


def test_early_stopping_on_unlearnable_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    codes = rng.integers(0, 2, 200)
    torch.manual_seed(0)
    net = FusionClassifier([5], 2, hidden=32, dropout=0.0)
    hist = train_classifier(
        net, [X[:150]], codes[:150], val_reps=[X[150:]], val_codes=codes[150:], max_epochs=300, patience=5, lr=1e-2
    )
    assert hist["stopped_early"]
    assert hist["n_epochs"] == hist["best_epoch"] + 5
    assert hist["n_epochs"] < 300


def test_without_validation_runs_all_epochs():
    reps, codes = two_bit_data(60)
    net = FusionClassifier([8, 6], 4, hidden=8)
    hist = train_classifier(net, reps, codes, max_epochs=7)
    assert hist["n_epochs"] == 7 and hist["best_epoch"] == 7 and not hist["stopped_early"]
    assert hist["val_loss"] == []


def test_class_weights_shift_predictions_to_the_upweighted_class():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4)).astype(np.float32)  # no signal: the prior decides
    codes = (rng.random(300) < 0.3).astype(int)

    def frac_class1(weights):
        torch.manual_seed(0)
        net = FusionClassifier([4], 2, hidden=8, dropout=0.0)
        train_classifier(net, [X], codes, class_weights=weights, max_epochs=30, lr=1e-2)
        return (predict_proba(net, [X]).argmax(1) == 1).mean()

    assert frac_class1(np.array([1.0, 10.0], dtype=np.float32)) > frac_class1(None) + 0.2


def test_training_rejects_bad_settings():
    reps, codes = two_bit_data(20)
    with pytest.raises(ValueError, match="must be positive"):
        train_classifier(FusionClassifier([8, 6], 4), reps, codes, max_epochs=0)


@pytest.mark.gpu
def test_training_on_cuda():
    reps, codes = two_bit_data(200)
    net = FusionClassifier([8, 6], 4, hidden=16)
    hist = train_classifier(net, reps, codes, max_epochs=20, lr=1e-2, device="cuda")
    assert hist["device"].startswith("cuda")
    proba = predict_proba(net, reps, device="cuda")
    assert (proba.argmax(1) == codes).mean() > 0.8


def test_init_from_branches_sums_the_branch_logits():
    reps, codes = two_bit_data(120)
    branches = []
    for i, X in enumerate(reps):
        torch.manual_seed(i)
        branch = FusionClassifier([X.shape[1]], 4, hidden=8)
        train_classifier(branch, [X], codes, max_epochs=3)
        branches.append(branch)
    fused = FusionClassifier([8, 6], 4, hidden=8).eval()
    init_from_branches(fused, branches, [1.0, 0.5])
    tensors = [torch.from_numpy(X) for X in reps]
    with torch.no_grad():
        expected = branches[0](tensors[0]) + 0.5 * branches[1](tensors[1])
        torch.testing.assert_close(fused(*tensors), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="single-representation"):
        init_from_branches(FusionClassifier([6, 8], 4, hidden=8), branches)


def test_choose_branch_weights_minimises_validation_loss():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 300)
    good = rng.normal(size=(300, 5)).astype(np.float32)
    good[:, 0] += 3 * codes
    noise = rng.normal(size=(300, 20)).astype(np.float32)
    branches = []
    for X in (good, noise):
        torch.manual_seed(0)
        branch = FusionClassifier([X.shape[1]], 3, hidden=64, dropout=0.0)
        train_classifier(branch, [X[:200]], codes[:200], max_epochs=150, lr=1e-2)  # the noise branch memorises
        branches.append(branch)
    val = [good[200:], noise[200:]]
    weights = choose_branch_weights(branches, val, codes[200:])
    assert weights[0] == 1.0 and weights[1] <= 0.25

    def val_loss(w):
        with torch.no_grad():
            z = sum(wi * b(torch.from_numpy(X)) for wi, b, X in zip(w, branches, val, strict=True))
            return float(torch.nn.functional.cross_entropy(z, torch.from_numpy(codes[200:]).long()))

    assert val_loss(weights) <= min(val_loss([1.0, 1.0]), val_loss([0.0, 1.0]), val_loss([1.0, 0.5]))


def test_keep_initial_never_ends_worse_than_the_start_on_validation():
    reps, codes = two_bit_data(200)
    torch.manual_seed(0)
    net = FusionClassifier([8, 6], 4, hidden=8)
    train_classifier(net, reps, codes, max_epochs=30, lr=1e-2)
    start = copy.deepcopy(net.state_dict())
    # a huge learning rate makes every further epoch worse: the starting weights must come back
    hist = train_classifier(
        net, reps, codes, val_reps=reps, val_codes=codes, lr=10.0, max_epochs=5, patience=2, keep_initial=True
    )
    assert hist["best_epoch"] == 0
    for k, v in start.items():
        assert torch.equal(net.state_dict()[k], v), k


def test_train_fusion_recipe():
    reps, codes = two_bit_data(300)
    tr, va = stratified_split(codes, 0.2, seed=0)
    args = {"val_reps": [X[va] for X in reps], "val_codes": codes[va], "max_epochs": 40, "lr": 1e-2}
    net, hist = train_fusion([X[tr] for X in reps], codes[tr], 4, architecture={"hidden": 16}, **args)
    assert net.in_dims == [8, 6] and net.hidden == 16
    assert len(hist["branch_weights"]) == 2 and max(hist["branch_weights"]) == 1.0
    assert (predict_proba(net, args["val_reps"]).argmax(1) == codes[va]).mean() > 0.8
    net2, hist2 = train_fusion([X[tr] for X in reps], codes[tr], 4, architecture={"hidden": 16}, **args)
    assert hist2 == hist
    for v, v2 in zip(net.state_dict().values(), net2.state_dict().values(), strict=True):
        assert torch.equal(v, v2)
    _, plain = train_fusion([X[tr] for X in reps], codes[tr], 4, pretrain=False, **args)
    assert "branch_weights" not in plain
