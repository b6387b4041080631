"""How well the defaults generalise: linear(100) models scored on 5,000 fresh points.

For each data seed s, nnserve trains the lab's network with every default (network seed
s, the validation split chosen with s, as a job on {"kind": "linear", "seed": s} does) on
linear(100, s); scikit-learn's LogisticRegression (C=1e4, nearly unregularised, and its
default C=1), MLPClassifier((4, 4), lbfgs) and a linear SVM fit the same 100 points. Every
model is scored on linear(5000, FRESH + s). scikit-learn is a peer here, never in the product.
The target: nnserve's mean at least LogisticRegression(C=1e4)'s.
"""

import statistics
import warnings

import numpy as np

from service.nn import datasets
from service.nn.model import Model
from service.nn.network import Architecture
from service.nn.training import TrainingConfig

from .measure import Row, need_peers, one_thread

SECTION = "generalisation"
FRESH = 100_000  # the fresh points' seeds: far from the training sets'
POINTS, FRESH_POINTS = 100, 5000


def peers():
    """Return {name: make(seed) -> an unfitted scikit-learn classifier}."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import LinearSVC

    return {
        "LogisticRegression(C=1e4)": lambda s: LogisticRegression(C=1e4, max_iter=10_000),
        "LogisticRegression() (C=1)": lambda s: LogisticRegression(),
        "MLPClassifier((4, 4), lbfgs)": lambda s: MLPClassifier(
            (4, 4), solver="lbfgs", max_iter=5000, random_state=s),
        "LinearSVC()": lambda s: LinearSVC(max_iter=100_000),
    }


def run(plan):
    """Return the rows of each model's mean accuracy on fresh points, and the verdict."""
    with_sklearn = need_peers(plan, "sklearn")
    scores = {"nnserve defaults": []}
    makers = peers() if with_sklearn else {}
    scores.update({name: [] for name in makers})
    arch = Architecture()
    with one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's convergence warnings
        for seed in range(plan.generalisation_seeds):
            x, y = datasets.linear(POINTS, seed)
            x_new, y_new = datasets.linear(FRESH_POINTS, FRESH + seed)
            model, _ = Model.train(arch, x, y, TrainingConfig(seed=seed), split_seed=seed)
            scores["nnserve defaults"].append(float(np.mean(model.predict(x_new)[1] == y_new)))
            for name, make in makers.items():
                scores[name].append(float(make(seed).fit(x, y).score(x_new, y_new)))
    return _rows(scores, plan.generalisation_seeds)


def _rows(scores, seeds):
    label = f"linear({POINTS}) over {seeds} data seeds, {FRESH_POINTS} fresh points each"
    ours = 100 * statistics.mean(scores["nnserve defaults"])
    rows = []
    for name, values in scores.items():
        mean, worst = 100 * statistics.mean(values), 100 * min(values)
        judged = {}
        if name == "nnserve defaults" and "LogisticRegression(C=1e4)" in scores:
            peer = 100 * statistics.mean(scores["LogisticRegression(C=1e4)"])
            ok = mean >= peer
            judged = {"target": f">= LogisticRegression(C=1e4) ({peer:.2f}%)", "ok": ok,
                      "note": "" if ok else f"short by {peer - mean:.2f} points"}
        rows.append(Row(SECTION, f"{name}: mean accuracy, {label}", mean, "%", worst,
                        100 * max(values), ratio=f"worst seed {worst:.1f}%; "
                        f"{mean - ours:+.2f} points against nnserve", **judged))
    if len(rows) == 1:
        rows.append(Row(SECTION, "scikit-learn peers", None, "", note="skipped: not installed"))
    return rows
