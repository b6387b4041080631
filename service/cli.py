"""The `nnserve` command: serve, and local train / predict / models with no server."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import plots
from .core import fit_metrics, split_seed
from .errors import ServiceError
from .nn import datasets
from .nn.model import Model
from .nn.network import Architecture
from .nn.training import TrainingConfig

LAB_REPORT_EVERY = 1000


def main(argv=None):
    """Run the nnserve command line; return its exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, LookupError, OSError, ServiceError) as exc:
        print(f"nnserve: {exc}", file=sys.stderr)
        return 2


def serve(args):
    """Replace this process with gunicorn running the project's configuration."""
    config = Path(args.config)
    if not config.is_file():
        raise LookupError(f"no gunicorn configuration at {config}; run from the project folder")
    # python -m gunicorn: the gunicorn of this interpreter, whatever PATH holds
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(config),
                              "service:create_app()"])


def train(args):
    """Train locally and print the lab's report: losses, every prediction, the accuracy."""
    x, y = _dataset(args)
    arch = Architecture((2, *args.hidden, 1), args.activation, args.output_activation,
                        not args.no_bias)
    config = TrainingConfig(epochs=args.epochs, learning_rate=args.lr, optimizer=args.optimizer,
                            loss=args.loss, batch_size=args.batch_size, seed=args.seed,
                            starts=args.starts, validation_split=args.validation_split,
                            l2=args.l2)

    def print_loss(epoch, loss, _accuracy):
        print(f"epoch {epoch} loss: {loss:.4f}")

    started = time.perf_counter()
    model, fit = Model.train(arch, x, y, config, on_progress=print_loss,
                             report_every=LAB_REPORT_EVERY,
                             split_seed=split_seed(_summary(args, x)))
    seconds = time.perf_counter() - started
    scores, labels = model.predict(x)
    for (x1, x2), truth, score, label in zip(x, y, scores, labels, strict=True):
        mark = "" if label == truth else "  <- wrong"
        print(f"({x1:.3f}, {x2:.3f}) truth {int(truth)} prediction {score:.4f} label {label}{mark}")
    print(f"accuracy: {fit.accuracy:.2%} ({fit.epochs_run} epochs, stopped by {fit.stop_reason})")
    if fit.validation_accuracy is not None:
        print(f"validation accuracy: {fit.validation_accuracy:.2%} "
              f"(loss {fit.validation_loss:.4f}) on the held-out points")
    if args.plot:
        Path(args.plot).write_bytes(plots.model_png(model, x, y, fit.history, title=args.dataset))
        print(f"figure written to {args.plot}")
    if args.name:
        meta = _store(args).save(args.name, model, dataset=_summary(args, x), x=x, y=y,
                                 metrics=fit_metrics(fit, seconds), history=fit.history)
        print(f"saved {meta['name']} version {meta['version']}")


def predict(args):
    """Print label and probability of each point under a stored model."""
    model, meta = _store(args).load(args.name, args.version)
    points = [args.points[i : i + 2] for i in range(0, len(args.points), 2)]
    scores, labels = model.classify(points, args.threshold)
    for point, score, label in zip(points, scores, labels, strict=True):
        print(json.dumps({"point": point, "label": label, "probability": score,
                          "version": meta["version"]}))


def models(args):
    """Print every model of the store with its latest version and metrics."""
    for row in _store(args).list_models():
        print(json.dumps(row))


def _store(args):
    from .settings import Settings
    from .store import ModelStore

    return ModelStore(args.store or Settings().store_dir)


def _dataset(args):
    if args.dataset == "xor":
        return datasets.xor()
    if args.dataset == "linear":
        return datasets.linear(args.n, args.data_seed)
    return datasets.DATASETS[args.dataset](args.n, args.noise, args.data_seed)


def _summary(args, x):
    return {"kind": args.dataset, "n": len(x), "seed": args.data_seed}


def _parser():
    defaults, arch = TrainingConfig(), Architecture()
    parser = argparse.ArgumentParser(prog="nnserve", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="serve the HTTP API with gunicorn")
    p.add_argument("--config", default="gunicorn.conf.py", help="gunicorn configuration file")
    p.set_defaults(run=serve)

    p = sub.add_parser("train", help="train locally and print the lab's report")
    p.add_argument("--dataset", choices=sorted(datasets.DATASETS), default="xor")
    p.add_argument("--n", type=int, default=100, help="points of linear, circle, spiral")
    p.add_argument("--noise", type=float, default=0.05, help="noise of circle and spiral")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=list(arch.layers[1:-1]))
    p.add_argument("--activation", default=arch.activation)
    p.add_argument("--output-activation", default=arch.output_activation)
    p.add_argument("--no-bias", action="store_true")
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--lr", type=float, default=defaults.learning_rate)
    p.add_argument("--optimizer", default=defaults.optimizer)
    p.add_argument("--loss", default=defaults.loss)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--starts", type=int, default=defaults.starts)
    p.add_argument("--validation-split", type=float, default=defaults.validation_split,
                   help="fraction of the points held out (stratified, by --data-seed)")
    p.add_argument("--l2", type=float, default=defaults.l2,
                   help="weight decay on the weights: the loss gains (l2 / 2) sum(W^2)")
    p.add_argument("--name", help="also save the model under this name in the store")
    p.add_argument("--plot", metavar="PNG", help="also write the figure to this PNG file")
    p.add_argument("--store", help="store directory (default: NNSERVE_STORE_DIR or model_store)")
    p.set_defaults(run=train)

    p = sub.add_parser("predict", help="classify points with a stored model")
    p.add_argument("name")
    p.add_argument("points", type=float, nargs="+", metavar="X1 X2")
    p.add_argument("--version", type=int)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--store")
    p.set_defaults(run=predict)

    p = sub.add_parser("models", help="list the models of a store")
    p.add_argument("--store")
    p.set_defaults(run=models)
    return parser


if __name__ == "__main__":
    sys.exit(main())
