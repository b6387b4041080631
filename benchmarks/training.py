"""Training, same work: the lab's network, 10,000 full-batch epochs of SGD on the MSE.

nnserve runs through fit(), the function every training job calls, with starts=1 and l2=0;
the floor, PyTorch (one thread) and scikit-learn run beside it, repeat by repeat.
scikit-learn runs twice: as the issue configures it (its SGD defaults: Nesterov
momentum, shuffling, L2) for the target, and cut down to plain full-batch SGD
without shuffling, nnserve's exact work, for information.
The floor and PyTorch start from nnserve's initial weights: their final weights are
checked against nnserve's, so the comparison is of the same arithmetic.
"""

import numpy as np

from service.nn import datasets
from service.nn.network import Architecture, init_params
from service.nn.training import TrainingConfig, fit

from . import peers
from .measure import Row, at_least, at_most, need_peers, one_thread, side_by_side

SECTION = "training"
LEARNING_RATE = 0.5
FLOOR_TARGET = 1.25
PEER_TARGET = 10.0
PEERS = {  # the peers (with targets), and scikit-learn cut down to nnserve's work
    "torch": "torch",
    "sklearn": "sklearn (the issue's MLPClassifier)",
    "sklearn plain": "sklearn, plain full-batch SGD (no target)",
}


def run(plan):
    """Return the rows of the same-work comparison on linear(100) and XOR."""
    with_peers = need_peers(plan, "torch", "sklearn")
    rows = []
    for name, (x, y) in (("linear(100)", datasets.linear(100, 0)), ("XOR", datasets.xor())):
        with one_thread():
            rows += _compare(name, x, y, plan, with_peers)
    return rows


def _compare(name, x, y, plan, with_peers):
    arch, epochs = Architecture(), plan.epochs
    config = TrainingConfig(optimizer="sgd", loss="mse", learning_rate=LEARNING_RATE, l2=0.0,
                            epochs=epochs, starts=1, seed=0)
    theta0 = init_params(arch, np.random.default_rng(config.seed))["theta"]
    results = {}
    contenders = {
        "nnserve": lambda: results.update(nnserve=fit(arch, x, y, config).params["theta"]),
        "floor": lambda: results.update(floor=peers.floor_fit(x, y, theta0, epochs,
                                                               LEARNING_RATE)),
    }
    if with_peers:
        contenders["torch"] = lambda: results.update(torch=peers.torch_theta(peers.torch_fit(
            peers.torch_net(theta0), x, y, epochs, LEARNING_RATE)))
        contenders["sklearn"] = lambda: peers.sklearn_fit(peers.sklearn_lab(epochs), x, y)
        contenders["sklearn plain"] = lambda: peers.sklearn_fit(
            peers.sklearn_plain(epochs, LEARNING_RATE, len(x)), x, y)
    times = side_by_side(contenders, plan.repeats)
    _check_same_weights(results)
    per_epoch = 1e6 / epochs
    ours = times["nnserve"].median
    label = f"{epochs} epochs, {name}"
    rows = [times["nnserve"].row(SECTION, f"nnserve fit(), {label}", per_epoch, "us/epoch")]
    ratio = ours / times["floor"].median
    rows.append(times["floor"].row(SECTION, f"floor (NumPy, 32 calls), {label}", per_epoch,
                                   "us/epoch", ratio=f"nnserve {ratio:.2f}x floor",
                                   target=f"<= {FLOOR_TARGET}x", **at_most(ratio, FLOOR_TARGET)))
    for peer, title in PEERS.items():
        if peer not in times:
            rows.append(Row(SECTION, f"{title}, {label}", None, "",
                            note="skipped: not installed"))
            continue
        ratio = times[peer].median / ours
        target = {} if peer == "sklearn plain" else {
            "target": f">= {PEER_TARGET:g}x", **at_least(ratio, PEER_TARGET)}
        rows.append(times[peer].row(SECTION, f"{title}, {label}", per_epoch, "us/epoch",
                                    ratio=f"nnserve {ratio:.1f}x faster", **target))
    return rows


def _check_same_weights(results):
    """Raise if the floor or PyTorch did not compute what nnserve computed."""
    for peer in ("floor", "torch"):
        if peer in results and not np.allclose(results[peer], results["nnserve"], atol=1e-8):
            diff = np.max(np.abs(results[peer] - results["nnserve"]))
            raise AssertionError(f"{peer} ended {diff:.2e} away from nnserve: not the same work")
