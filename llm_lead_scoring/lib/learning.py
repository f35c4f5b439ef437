"""A regularised, calibrated logistic win-probability model in plain Python (no numpy: the
official odoo:17.0 image runs it as is).

Rows are dicts of categorical features (value None = unknown; lists = multi-valued, e.g. tags).
Encoding pools rare values. The split holds out the most recent leads (by creation) when the
time order is usable, else a stratified sample, and says why. Training is AdaGrad SGD on the
L2-penalised log-likelihood (penalty strength chosen by cross-validation when affordable);
calibration is fitted on out-of-fold scores of the whole training part (Platt or isotonic,
whichever has the lower cross-validated log-loss). Probabilities are kept within
[P_MIN, P_MAX]; explanations add up exactly in log-odds: base + sum(contributions) =
logit(probability).
"""

import bisect
import math
import random

UNKNOWN = "unknown"
OTHER = "other"
P_MIN, P_MAX = 0.01, 0.99  # never certain, as Odoo's PLS (1-99 %)
MIN_PART_OUTCOME = 10  # won and lost leads each part of a time split needs
MIN_PART_DATES = 3  # distinct creation days each part of a time split needs
SHARE_FACTOR = 3.0  # the test part's won share must be within 1/3x-3x the training part's
THIN_COUNT = 30  # a feature value seen on fewer training leads is thin evidence
ALPHAS = (1.0, 3.0, 10.0)  # L2 strengths tried (total penalty alpha/2 * |w|^2)
DEFAULT_ALPHA = 3.0
CV_FOLDS = 5  # 3 on large histories
# row-updates (one SGD step on one lead) the cross-validation may spend: 5 folds up to
# CV_BUDGET, the strength chosen among ALPHAS up to GRID_BUDGET (small histories, where it
# matters most); about 5 us each on a quiet machine
CV_BUDGET = 1_000_000
GRID_BUDGET = 1_500_000


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


def _epochs(n):
    """More passes on small histories (cheap), 4 on large ones (the time budget)."""
    return max(4, min(20, 200_000 // max(n, 1)))


def train_logistic(X, y, n_features, alpha=DEFAULT_ALPHA, epochs=None, learning_rate=0.3, seed=0):
    """AdaGrad SGD for a binary logistic regression on sparse binary features, minimising
    sum(log-loss) + alpha / 2 * |w|^2 (intercept not penalised).

    The penalty's gradient is spread over the rows where a feature is present (alpha * w /
    count per occurrence), so a rare value is shrunk as much as the full objective says, not
    less because it is seldom visited.

    :return: (intercept, weights list)
    """
    weights = [0.0] * n_features
    grad_sq = [1e-8] * n_features
    counts = [0] * n_features
    for features in X:
        for j in features:
            counts[j] += 1
    shrink = [alpha / c if c else 0.0 for c in counts]
    rate = min(max(sum(y) / len(y), 1e-6), 1 - 1e-6)
    intercept = logit(rate)
    intercept_sq = 1e-8
    order = list(range(len(X)))
    rng = random.Random(seed)
    sqrt = math.sqrt
    for _epoch in range(epochs or _epochs(len(X))):
        rng.shuffle(order)
        for i in order:
            features = X[i]
            error = sigmoid(intercept + sum([weights[j] for j in features])) - y[i]
            intercept_sq += error * error
            intercept -= learning_rate * error / sqrt(intercept_sq)
            for j in features:
                w = weights[j]
                g = error + shrink[j] * w
                s = grad_sq[j] + g * g
                grad_sq[j] = s
                weights[j] = w - learning_rate * g / sqrt(s)
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


def fit_isotonic(z, y, prior=1.0):
    """Isotonic (non-decreasing) calibration of scores z by pool-adjacent-violators.

    Each block's rate is shrunk towards the overall rate by ``prior`` pseudo-leads, so no
    block says 0 or 1 from a handful of leads. :return: (knots, values) for interpolation.
    """
    pairs = sorted(zip(z, y, strict=True))
    rate = sum(y) / len(y)
    blocks = []  # [sum z, sum y, count]
    for zi, yi in pairs:
        blocks.append([zi, yi, 1])
        while len(blocks) > 1 and (blocks[-2][1] * blocks[-1][2] >= blocks[-1][1] * blocks[-2][2]):
            last = blocks.pop()
            for k in range(3):
                blocks[-1][k] += last[k]
    knots = [b[0] / b[2] for b in blocks]
    values = [(b[1] + prior * rate) / (b[2] + prior) for b in blocks]
    return knots, values


def apply_isotonic(knots, values, zi):
    """Linear interpolation between the blocks' mean scores, constant beyond the ends."""
    k = bisect.bisect_left(knots, zi)
    if k == 0:
        return values[0]
    if k >= len(knots):
        return values[-1]
    z0, z1 = knots[k - 1], knots[k]
    t = (zi - z0) / (z1 - z0) if z1 > z0 else 1.0
    return values[k - 1] + t * (values[k] - values[k - 1])


def calibrate(calibrator, zi):
    """Calibrated probability of a raw score, kept within [P_MIN, P_MAX]."""
    if calibrator["method"] == "isotonic":
        p = apply_isotonic(calibrator["knots"], calibrator["values"], zi)
    else:
        p = sigmoid(calibrator["a"] * zi + calibrator["b"])
    return min(max(p, P_MIN), P_MAX)


def _fit_calibrator(method, z, y):
    if method == "isotonic":
        knots, values = fit_isotonic(z, y)
        return {"method": "isotonic", "knots": knots, "values": values}
    a, b = fit_platt(z, y)
    return {"method": "platt", "a": a, "b": b}


def _log_loss(p, y):
    eps = 1e-9
    return -sum(
        yi * math.log(max(pi, eps)) + (1 - yi) * math.log(max(1 - pi, eps))
        for pi, yi in zip(p, y, strict=True)
    ) / max(len(y), 1)


def stratified_folds(y, k, seed=0):
    """k folds (lists of positions in y) with the same share of won in each."""
    rng = random.Random(seed)
    folds = [[] for _i in range(k)]
    for outcome in (1, 0):
        members = [i for i, v in enumerate(y) if v == outcome]
        rng.shuffle(members)
        for n, i in enumerate(members):
            folds[n % k].append(i)
    return [sorted(f) for f in folds]


def choose_calibrator(z, y, folds):
    """Platt or isotonic, whichever has the lower log-loss on held-out folds of (z, y);
    then fitted on all of (z, y). :return: (calibrator, {method: held-out log-loss})"""
    losses = {}
    for method in ("platt", "isotonic"):
        predicted, observed = [], []
        for fold in folds:
            held = set(fold)
            rest = [i for i in range(len(z)) if i not in held]
            if not rest or not any(y[i] for i in rest) or all(y[i] for i in rest):
                continue
            cal = _fit_calibrator(method, [z[i] for i in rest], [y[i] for i in rest])
            predicted += [calibrate(cal, z[i]) for i in fold]
            observed += [y[i] for i in fold]
        losses[method] = _log_loss(predicted, observed) if observed else float("inf")
    best = min(losses, key=lambda m: (losses[m], m != "platt"))
    return _fit_calibrator(best, z, y), losses


def split(y, order_keys, test_share=0.2, seed=0):
    """Hold out the most recent leads (by creation) when the time order is usable: each part
    has at least MIN_PART_OUTCOME won and lost leads and MIN_PART_DATES distinct days, and
    the held-out won share is within SHARE_FACTOR of the training one. Otherwise (a history
    imported or closed in bulk, say) a stratified random sample, with the reason.

    :return: dict train, test (indexes), method ('time' or 'stratified'), reason (str or None)
    """
    n = len(y)
    order = sorted(range(n), key=lambda i: (order_keys[i], i))
    n_test = max(int(n * test_share), 1)
    train_idx, test_idx = order[: n - n_test], order[n - n_test :]
    reason = None
    for label, part in (("training", train_idx), ("held-out", test_idx)):
        won = sum(y[i] for i in part)
        days = {_day(order_keys[i]) for i in part}
        if won < MIN_PART_OUTCOME or len(part) - won < MIN_PART_OUTCOME:
            reason = "the %s part of the time order has %s won and %s lost leads" % (
                label,
                won,
                len(part) - won,
            )
        elif len(days) < MIN_PART_DATES:
            reason = "the %s part of the time order spans %s creation day(s)" % (
                label,
                len(days),
            )
        if reason:
            break
    if not reason:
        train_rate = sum(y[i] for i in train_idx) / len(train_idx)
        test_rate = sum(y[i] for i in test_idx) / len(test_idx)
        if not train_rate / SHARE_FACTOR <= test_rate <= train_rate * SHARE_FACTOR:
            reason = "the most recent leads are %.1f%% won against %.1f%% before" % (
                100 * test_rate,
                100 * train_rate,
            )
    if not reason:
        return {"train": train_idx, "test": test_idx, "method": "time", "reason": None}
    folds = stratified_folds(y, max(int(round(1 / test_share)), 2), seed=seed)
    test_idx = folds[0]
    held = set(test_idx)
    train_idx = [i for i in order if i not in held]
    return {"train": train_idx, "test": test_idx, "method": "stratified", "reason": reason}


def _day(key):
    return key.date() if hasattr(key, "date") else key


def _out_of_fold(X, y, n_features, alpha, folds, epochs, seed):
    z = [0.0] * len(y)
    for fold in folds:
        held = set(fold)
        rest = [i for i in range(len(y)) if i not in held]
        intercept, weights = train_logistic(
            [X[i] for i in rest], [y[i] for i in rest], n_features, alpha, epochs, seed=seed
        )
        for i in fold:
            z[i] = decision(X[i], intercept, weights)
    return z


def train(rows, y, order_keys, min_count=10, test_share=0.2, seed=0, alphas=ALPHAS):
    """Split (see split()), learn on the training part, calibrate by cross-validation.

    The L2 strength is chosen among ``alphas`` by cross-validated log-loss when that fits in
    GRID_BUDGET row-updates, else DEFAULT_ALPHA. The out-of-fold scores of the chosen strength
    (every training lead scored by a model that did not see it) fit the calibrator; the model
    is then refitted on the whole training part.

    :param order_keys: sortable creation moment per row (older first)
    :return dict: the model (vocabulary, intercept, weights, calibrator, counts), the split
        (train / test indexes, method, reason), X (encoded rows) and the CV figures
    """
    parts = split(y, order_keys, test_share=test_share, seed=seed)
    train_idx = parts["train"]
    vocabulary = build_vocabulary([rows[i] for i in train_idx], min_count=min_count)
    X = [encode(row, vocabulary) for row in rows]
    n_features = len(vocabulary)
    X_train = [X[i] for i in train_idx]
    y_train = [y[i] for i in train_idx]
    epochs = _epochs(len(X_train))
    k = CV_FOLDS if len(X_train) * epochs * CV_FOLDS <= CV_BUDGET else 3
    folds = stratified_folds(y_train, k, seed=seed)
    fit_cost = len(X_train) * epochs * (k - 1)  # k fits, each on (k - 1) / k of the part
    candidates = list(alphas) if fit_cost * len(alphas) <= GRID_BUDGET else [DEFAULT_ALPHA]
    cv = {}
    best = None
    for alpha in candidates:
        z = _out_of_fold(X_train, y_train, n_features, alpha, folds, epochs, seed)
        calibrator, losses = choose_calibrator(z, y_train, folds)
        cv[alpha] = min(losses.values())
        if best is None or cv[alpha] < cv[best[0]]:
            best = (alpha, calibrator, losses)
    alpha, calibrator, losses = best
    intercept, weights = train_logistic(X_train, y_train, n_features, alpha, epochs, seed=seed)
    counts = [0] * n_features
    for features in X_train:
        for j in features:
            counts[j] += 1
    return {
        "vocabulary": vocabulary,
        "intercept": intercept,
        "weights": weights,
        "calibrator": calibrator,
        "counts": counts,
        "alpha": alpha,
        "cv_log_loss": cv,
        "calibration_log_loss": losses,
        "train": train_idx,
        "test": parts["test"],
        "split": parts["method"],
        "split_reason": parts["reason"],
        "X": X,
    }


def refit(rows, y, fit, min_count=10, seed=0):
    """The same recipe (L2 strength of ``fit``, calibrator chosen again by cross-validation)
    on all the closed leads, held-out ones included: what is published once the held-out
    measure has passed. :return: a model dict as train() returns, its split figures kept."""
    vocabulary = build_vocabulary(rows, min_count=min_count)
    X = [encode(row, vocabulary) for row in rows]
    n_features = len(vocabulary)
    epochs = _epochs(len(X))
    k = CV_FOLDS if len(X) * epochs * CV_FOLDS <= CV_BUDGET else 3
    folds = stratified_folds(y, k, seed=seed)
    z = _out_of_fold(X, y, n_features, fit["alpha"], folds, epochs, seed)
    calibrator, losses = choose_calibrator(z, y, folds)
    intercept, weights = train_logistic(X, y, n_features, fit["alpha"], epochs, seed=seed)
    counts = [0] * n_features
    for features in X:
        for j in features:
            counts[j] += 1
    return dict(
        fit,
        vocabulary=vocabulary,
        intercept=intercept,
        weights=weights,
        calibrator=calibrator,
        counts=counts,
        calibration_log_loss=losses,
        X=X,
    )


def predict(model, features):
    return calibrate(model["calibrator"], decision(features, model["intercept"], model["weights"]))


def explain(model, features, names):
    """(base, [(name, log-odds contribution)], probability) with base + sum(contributions) =
    logit(probability), exactly, whatever the calibrator and the clamping.

    The calibrated log-odds move from the base (no feature set: the intercept's probability)
    to the lead's in proportion to each feature's weight.
    """
    weights = model["weights"]
    calibrator = model["calibrator"]
    total = sum([weights[j] for j in features])
    probability = calibrate(calibrator, model["intercept"] + total)
    base = model.get("base")  # the same for every lead: compiled once by the caller
    if base is None:
        base = logit(calibrate(calibrator, model["intercept"]))
    target = logit(probability)
    if abs(total) > 1e-9:
        slope = (target - base) / total
        contributions = [(names[j], slope * weights[j]) for j in features]
    else:
        contributions = [(names[j], 0.0) for j in features]
        base = target
    return base, contributions, probability


def encode_with_thin_evidence(row, vocabulary, counts, minimum=THIN_COUNT):
    """encode() and thin_evidence() in one pass (rescoring reads every open lead):
    :return: (sorted feature indexes, thin (field, value) pairs; none without counts)"""
    indexes = set()
    thin = []
    for field, value in _tokens(row):
        index = vocabulary.get((field, value))
        if value != UNKNOWN and counts and (index is None or counts[index] < minimum):
            thin.append((field, value))
        if index is None:
            index = vocabulary.get((field, OTHER))
        if index is not None:
            indexes.add(index)
    return sorted(indexes), thin


def thin_evidence(row, model, minimum=THIN_COUNT):
    """The (field, value) pairs of a row that the training leads rarely had: pooled as
    'other' (unseen or rare) or seen fewer than ``minimum`` times. Unknown values are not
    thin: missing data is common and well measured."""
    vocabulary, counts = model["vocabulary"], model["counts"]
    thin = []
    for field, value in _tokens(row):
        if value == UNKNOWN:
            continue
        index = vocabulary.get((field, value))
        if index is None or counts[index] < minimum:
            thin.append((field, value))
    return thin
