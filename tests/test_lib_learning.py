"""The win-probability learner (llm_lead_scoring/lib/learning.py), without Odoo."""

import random
from datetime import datetime, timedelta

from llm_lib import learning


def _dataset(n=3000, seed=1):
    """Two informative categorical fields and a noise field; true logit known."""
    rng = random.Random(seed)
    effects = {"a": -1.5, "b": 0.0, "c": 1.0}
    rows, y = [], []
    for _i in range(n):
        source = rng.choice("abc")
        tag = rng.choice(["t1", "t2"])
        z = -1.0 + effects[source] + (0.8 if tag == "t1" else -0.4)
        rows.append({"source": source, "tag": [tag], "noise": rng.choice("xyz")})
        y.append(1 if rng.random() < learning.sigmoid(z) else 0)
    return rows, y


def test_split_uses_time_order_when_usable():
    _rows, y = _dataset(1000)
    start = datetime(2025, 1, 1)
    keys = [start + timedelta(hours=8 * i) for i in range(len(y))]
    parts = learning.split(y, keys)
    assert parts["method"] == "time" and parts["reason"] is None
    assert parts["test"] == list(range(800, 1000))


def test_split_falls_back_on_one_creation_day():
    _rows, y = _dataset(1000)
    keys = [datetime(2025, 1, 1)] * len(y)
    parts = learning.split(y, keys)
    assert parts["method"] == "stratified"
    assert "creation day" in parts["reason"]
    won_test = sum(y[i] for i in parts["test"]) / len(parts["test"])
    assert abs(won_test - sum(y) / len(y)) < 0.02
    assert not set(parts["test"]) & set(parts["train"])
    assert len(parts["test"]) + len(parts["train"]) == len(y)


def test_split_falls_back_when_recent_leads_are_one_outcome():
    # won leads entered first, lost ones after (an import sorted by outcome)
    y = [1] * 300 + [0] * 700
    keys = [datetime(2025, 1, 1) + timedelta(days=i // 5) for i in range(len(y))]
    parts = learning.split(y, keys)
    assert parts["method"] == "stratified"
    assert "0 won" in parts["reason"]


def test_train_is_calibrated_and_beats_base_rate():
    rows, y = _dataset(4000)
    keys = list(range(len(y)))
    fit = learning.train(rows, y, keys)
    test = fit["test"]
    p = [learning.predict(fit, fit["X"][i]) for i in test]
    y_test = [y[i] for i in test]
    ev = learning.evaluate(p, y_test)
    rate = sum(y[i] for i in fit["train"]) / len(fit["train"])
    base_brier = sum((rate - v) ** 2 for v in y_test) / len(y_test)
    assert ev["auc"] > 0.7
    assert ev["brier"] < base_brier
    assert ev["ece"] < 0.05
    assert fit["calibrator"]["method"] in ("platt", "isotonic")
    assert fit["alpha"] in learning.ALPHAS


def test_probabilities_clamped_and_explanations_exact():
    rows, y = _dataset(1500)
    fit = learning.train(rows, y, list(range(len(y))))
    fit["weights"] = [w * 50 for w in fit["weights"]]  # an overconfident model
    names = sorted(fit["vocabulary"], key=fit["vocabulary"].get)
    for method in ("platt", "isotonic"):
        if method == "isotonic":
            knots, values = learning.fit_isotonic([-5, -1, 0, 1, 5], [0, 0, 1, 1, 1], prior=0)
            fit["calibrator"] = {"method": "isotonic", "knots": knots, "values": values}
        for x in fit["X"][:200]:
            base, contributions, p = learning.explain(fit, x, names)
            assert learning.P_MIN <= p <= learning.P_MAX
            total = base + sum(c for _n, c in contributions)
            assert abs(total - learning.logit(p)) < 1e-9


def test_isotonic_is_monotone_and_shrunk():
    knots, values = learning.fit_isotonic([0, 1, 2, 3, 4, 5], [0, 1, 0, 1, 1, 1])
    assert values == sorted(values)
    assert 0 < values[0] and values[-1] < 1
    assert learning.apply_isotonic(knots, values, -10) == values[0]
    assert learning.apply_isotonic(knots, values, 10) == values[-1]


def test_thin_evidence_flags_rare_values_not_unknown():
    rows, y = _dataset(1500)
    rows[0]["noise"] = "rare"
    fit = learning.train(rows, y, list(range(len(y))))
    assert ("noise", "rare") in learning.thin_evidence(rows[0], fit)
    assert learning.thin_evidence({"source": "a", "tag": ["t1"], "noise": None}, fit) == []


def test_refit_learns_from_every_closed_lead():
    rows, y = _dataset(2000)
    fit = learning.train(rows, y, list(range(len(y))))
    refitted = learning.refit(rows, y, fit)
    assert len(refitted["X"]) == len(y) > len(fit["train"])
    assert sum(refitted["counts"]) >= sum(fit["counts"])
    assert refitted["alpha"] == fit["alpha"] and refitted["test"] == fit["test"]
    p = [learning.predict(refitted, x) for x in refitted["X"]]
    assert learning.evaluate(p, y)["auc"] > 0.7


def test_encode_with_thin_evidence_is_encode_and_thin_evidence():
    rows, y = _dataset(1500)
    rows[3]["noise"] = "rare"
    fit = learning.train(rows, y, list(range(len(y))))
    for row in rows[:50]:
        features, thin = learning.encode_with_thin_evidence(row, fit["vocabulary"], fit["counts"])
        assert features == learning.encode(row, fit["vocabulary"])
        assert thin == learning.thin_evidence(row, fit)
