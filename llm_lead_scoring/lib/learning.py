"""A regularised, calibrated logistic win-probability model in plain Python (no numpy: the
official odoo:17.0 image runs it as is).

Rows are dicts of categorical features (value None = unknown; lists = multi-valued, e.g. tags).
Encoding pools rare values; training is AdaGrad SGD with L2 on the older leads; Platt scaling
on the more recent ones makes the probabilities calibrated; explanations add up exactly in
log-odds: base + sum(contributions) = logit(probability).
"""

import math
import random

UNKNOWN = "unknown"
OTHER = "other"


def sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def logit(p):
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _tokens(row):
    for field, value in row.items():
        if isinstance(value, (list, tuple, set)):
            for item in value:
                yield field, str(item)
        else:
            yield field, UNKNOWN if value in (None, False, "") else str(value)


def build_vocabulary(rows, min_count=10):
    """Feature index per (field, value); values seen fewer than min_count times are pooled."""
    counts = {}
    fields = set()
    for row in rows:
        fields.update(row)
        for token in _tokens(row):
            counts[token] = counts.get(token, 0) + 1
    vocabulary = {}
    for token, count in sorted(counts.items()):
        if count >= min_count or token[1] == UNKNOWN:
            vocabulary[token] = len(vocabulary)
    for field in sorted(fields):
        vocabulary.setdefault((field, OTHER), len(vocabulary))
    return vocabulary


def encode(row, vocabulary):
    """Sorted unique feature indexes of a row (unseen or rare values go to field=other)."""
    indexes = set()
    for field, value in _tokens(row):
        index = vocabulary.get((field, value))
        if index is None:
            index = vocabulary.get((field, OTHER))
        if index is not None:
            indexes.add(index)
    return sorted(indexes)


def train_logistic(X, y, n_features, l2=1e-4, epochs=12, learning_rate=0.3, seed=0):
    """AdaGrad SGD for a binary logistic regression on sparse binary features.

    :return: (intercept, weights list)
    """
    weights = [0.0] * n_features
    grad_sq = [1e-8] * n_features
    rate = sum(y) / len(y)
    intercept = logit(rate)
    intercept_sq = 1e-8
    order = list(range(len(X)))
    rng = random.Random(seed)
    for _epoch in range(epochs):
        rng.shuffle(order)
        for i in order:
            features = X[i]
            z = intercept
            for j in features:
                z += weights[j]
            error = sigmoid(z) - y[i]
            intercept_sq += error * error
            intercept -= learning_rate * error / math.sqrt(intercept_sq)
            for j in features:
                g = error + l2 * weights[j]
                grad_sq[j] += g * g
                weights[j] -= learning_rate * g / math.sqrt(grad_sq[j])
    return intercept, weights


def decision(features, intercept, weights):
    z = intercept
    for j in features:
        z += weights[j]
    return z


def fit_platt(z, y, iterations=50):
    """(a, b) so that sigmoid(a * z + b) is calibrated on (z, y): Newton's method."""
    a, b = 1.0, 0.0
    for _iteration in range(iterations):
        ga = gb = haa = hab = hbb = 0.0
        for zi, yi in zip(z, y, strict=True):
            p = sigmoid(a * zi + b)
            d = p - yi
            w = max(p * (1 - p), 1e-12)
            ga += d * zi
            gb += d
            haa += w * zi * zi
            hab += w * zi
            hbb += w
        det = haa * hbb - hab * hab
        if abs(det) < 1e-12:
            break
        step_a = (hbb * ga - hab * gb) / det
        step_b = (haa * gb - hab * ga) / det
        a, b = a - step_a, b - step_b
        if abs(step_a) < 1e-9 and abs(step_b) < 1e-9:
            break
    return a, b


def auc(p, y):
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    pairs = sorted(zip(p, y, strict=True))
    positives = sum(y)
    negatives = len(y) - positives
    if not positives or not negatives:
        return None
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        average_rank = (i + j + 1) / 2.0
        rank_sum += average_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def calibration_table(p, y, bins=10):
    """10 equal-width bins: count, mean predicted, observed rate; and the expected
    calibration error (ECE, count-weighted mean of |predicted - observed|)."""
    table = []
    ece = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [
            (pi, yi)
            for pi, yi in zip(p, y, strict=True)
            if low <= pi < high or (b == bins - 1 and pi == 1.0)
        ]
        if members:
            predicted = sum(m[0] for m in members) / len(members)
            observed = sum(m[1] for m in members) / len(members)
            ece += len(members) / len(p) * abs(predicted - observed)
        else:
            predicted = observed = None
        table.append(
            {
                "bin": "%d-%d%%" % (low * 100, high * 100),
                "count": len(members),
                "predicted": predicted,
                "observed": observed,
            }
        )
    return table, ece


def evaluate(p, y):
    eps = 1e-9
    n = len(y)
    brier = sum((pi - yi) ** 2 for pi, yi in zip(p, y, strict=True)) / n
    log_loss = (
        -sum(
            yi * math.log(max(pi, eps)) + (1 - yi) * math.log(max(1 - pi, eps))
            for pi, yi in zip(p, y, strict=True)
        )
        / n
    )
    table, ece = calibration_table(p, y)
    return {
        "n": n,
        "auc": auc(p, y),
        "brier": brier,
        "log_loss": log_loss,
        "ece": ece,
        "calibration": table,
    }


def naive_bayes_pls(train_rows, train_y, test_rows, fields, team_field="team"):
    """Odoo 17's Predictive Lead Scoring, recomputed from the training leads only.

    As crm.lead._pls_get_naive_bayes_probabilities: per team (falling back to all teams), the
    prior is the team's won share; each set field value multiplies the won and lost scores
    by (count + 0.1) / field total; tags with fewer than 50 closed leads are ignored; unset
    values are skipped. Stage is left out: for a closed lead it is its outcome.
    """
    tables = {}

    def table(team):
        return tables.setdefault(team, {"won": 0, "lost": 0, "fields": {}})

    for row, won in zip(train_rows, train_y, strict=True):
        for key in (row.get(team_field), -1):
            t = table(key)
            t["won" if won else "lost"] += 1
            for field in fields:
                values = row.get(field)
                values = values if isinstance(values, (list, tuple, set)) else [values]
                for value in values:
                    if value in (None, False, ""):
                        continue
                    counts = t["fields"].setdefault(field, {}).setdefault(str(value), [0.1, 0.1])
                    counts[0 if won else 1] += 1
    probabilities = []
    for row in test_rows:
        t = tables.get(row.get(team_field)) or tables.get(-1)
        if not t or not t["won"] or not t["lost"]:
            t = tables.get(-1)
        total = t["won"] + t["lost"]
        s_won, s_lost = t["won"] / total, t["lost"] / total
        for field in fields:
            field_counts = t["fields"].get(field, {})
            won_total = sum(c[0] for c in field_counts.values())
            lost_total = sum(c[1] for c in field_counts.values())
            values = row.get(field)
            values = values if isinstance(values, (list, tuple, set)) else [values]
            for value in values:
                counts = field_counts.get(str(value))
                if not counts or not won_total or not lost_total:
                    continue
                if field == "tag" and counts[0] + counts[1] < 50:
                    continue
                s_won *= counts[0] / won_total
                s_lost *= counts[1] / lost_total
        p = s_won / (s_won + s_lost) if s_won + s_lost else 0.5
        probabilities.append(min(max(p, 0.0001), 0.9999))
    return probabilities


def train(rows, y, order_keys, min_count=10, calibration_share=0.2, test_share=0.2, seed=0):
    """Time-ordered split: train on the oldest leads, calibrate then test on the most recent.

    :param order_keys: sortable closing moment per row (older first)
    :return dict: the model (vocabulary, intercept, weights, platt a/b) and split indexes
    """
    order = sorted(range(len(rows)), key=lambda i: order_keys[i])
    n = len(order)
    n_test = max(int(n * test_share), 1)
    n_cal = max(int(n * calibration_share), 1)
    train_idx = order[: n - n_test - n_cal]
    cal_idx = order[n - n_test - n_cal : n - n_test]
    test_idx = order[n - n_test :]
    vocabulary = build_vocabulary([rows[i] for i in train_idx], min_count=min_count)
    X = [encode(rows[i], vocabulary) for i in range(n)]
    intercept, weights = train_logistic(
        [X[i] for i in train_idx], [y[i] for i in train_idx], len(vocabulary), seed=seed
    )
    z_cal = [decision(X[i], intercept, weights) for i in cal_idx]
    a, b = fit_platt(z_cal, [y[i] for i in cal_idx])
    return {
        "vocabulary": vocabulary,
        "intercept": intercept,
        "weights": weights,
        "a": a,
        "b": b,
        "train": train_idx,
        "calibration": cal_idx,
        "test": test_idx,
        "X": X,
    }


def predict(model, features):
    z = decision(features, model["intercept"], model["weights"])
    return sigmoid(model["a"] * z + model["b"])


def explain(model, features, names):
    """(base, [(name, log-odds contribution)]) with base + sum(contributions) = logit(p)."""
    a = model["a"]
    base = a * model["intercept"] + model["b"]
    contributions = [(names[j], a * model["weights"][j]) for j in features]
    return base, contributions
