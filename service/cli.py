"""The `nnserve` command: serve, and local train / sweep / predict / models with no server."""

import argparse
import json
import os
import sys

from pydantic import ValidationError

from . import backends, jsoncodec, plots
from .core import Service
from .errors import ServiceError
from .nn.datasets import DATASETS
from .nn.network import Architecture
from .nn.training import TrainingConfig
from .percent import percent
from .schemas import DATA_SPECS, PredictRequest, SweepRequest, TrainingRequest
from .settings import read_settings
from .sweeps import best_trial, expand

CONFIG = "python:service.gunicorn_conf"
LAB_REPORT_EVERY = 1000
UNSAVED = "local"  # the model name a request needs when the run is not saved


def main(argv=None):
    """Run the nnserve command line; return its exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:  # Ctrl-C: one line and the shell's status, not a traceback
        print("nnserve: interrupted", file=sys.stderr)
        return 130
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"]) or "the request"
        print(f"nnserve: {where}: {exc.errors()[0]['msg']}", file=sys.stderr)
    except (ValueError, LookupError, OSError, ServiceError) as exc:
        print(f"nnserve: {exc}", file=sys.stderr)
    return 2


def serve(args):
    """Replace this process with gunicorn running nnserve's configuration."""
    read_settings()  # a bad NNSERVE_* value: one line and status 2, before gunicorn starts
    # python -m gunicorn: the gunicorn of this interpreter, whatever PATH holds
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", args.config,
                              "service:create_app()"])


def train(args):
    """Train locally and print the lab's report: losses, every prediction, the accuracy."""
    service = _service(args)
    req = TrainingRequest.model_validate(_request(args), context=service.limits)
    if args.name:
        service.store.ping()  # a store no model can be saved in: refused before any work
    if args.plot is not None:
        _check_figure_path(args.plot)

    def print_loss(epoch, loss, _accuracy, _weights):
        print(f"epoch {epoch} loss: {loss:.4f}")

    fitted = service.train(req, on_progress=print_loss, report_every=LAB_REPORT_EVERY)
    x, y, fit = fitted.x, fitted.y, fitted.fit
    scores, labels = fitted.model.predict(x)
    for (x1, x2), truth, score, label in zip(x, y, scores, labels, strict=True):
        mark = "" if label == truth else "  <- wrong"
        print(f"({x1:.3f}, {x2:.3f}) truth {int(truth)} prediction {score:.4f} label {label}{mark}")
    print(f"accuracy: {percent(fit.accuracy, 2)} "
          f"({fit.epochs_run} epochs, stopped by {fit.stop_reason})")
    if fit.validation_accuracy is not None:
        print(f"validation accuracy: {percent(fit.validation_accuracy, 2)} "
              f"(loss {fit.validation_loss:.4f}) on the held-out points")
    if args.name:  # saved first: a figure that cannot be written loses no model
        meta = service.save(args.name, fitted)
        print(f"saved {meta['name']} version {meta['version']}")
    if args.plot is not None:
        _write_figure(args.plot, plots.model_png(fitted.model, x, y, fit.history,
                                                 title=args.dataset))
        print(f"figure written to {args.plot}")


def _check_figure_path(path):
    """Refuse, before any work, a --plot path no file can be written to: the file is opened
    for appending (nothing of one there is lost) and removed again if it was not there
    (access() let root through to /proc and /sys, found only after training)."""
    if path.endswith(os.sep) or os.path.isdir(path):
        raise OSError(f"cannot write the figure to {path!r}: it is a folder")
    if not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
        raise OSError(f"cannot write the figure to {path!r}: its folder is not writable")
    existed = os.path.lexists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise OSError(f"cannot write the figure to {path!r}: {exc.strerror}") from None
    if not existed:
        os.remove(path)


def _write_figure(path, png):
    """Write png to path, a failure named as the figure's (/dev/full: no space left)."""
    try:
        with open(path, "wb") as figure:
            figure.write(png)
    except OSError as exc:
        raise OSError(f"cannot write the figure to {path!r}: {exc.strerror}") from None


def sweep(args):
    """Run a sweep (the body of POST /v1/sweeps, from a file or -) here; print its table."""
    service = _service(args)
    if args.file == "-":
        raw = sys.stdin.buffer.read()
    else:
        with open(args.file, "rb") as f:
            raw = f.read()
    # read as the API reads a body: a duplicate key or nesting past the stack is refused
    try:
        doc = jsoncodec.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{args.file}: malformed JSON: {exc}") from None
    req = SweepRequest.model_validate(doc, context=service.limits)

    def report(progress, _history, last=False):
        if not last and progress["epoch"]:
            print(f"epoch {progress['epoch']} of {progress['epochs']}: "
                  f"{progress['done']} of {progress['total']} trials done", file=sys.stderr)
        return False

    result = service.sweep_here(req, report, save=args.save)
    _print_table(req, result)


def _print_table(req, result):
    """Print one row per trial: its parameters, status, metrics and version; * marks the best."""
    metrics = ("accuracy", "loss", "validation_accuracy", "validation_loss", "epochs")
    header = ["trial", *req.grid, "status", *metrics, "version"]
    rows = []
    best = best_trial(result["trials"], req.metric)
    for i, (params, state) in enumerate(zip(expand(req.grid), result["trials"], strict=True)):
        values = state["metrics"] or {}
        rows.append([f"{i}{'*' if i == best else ''}", *map(json.dumps, params.values()),
                     state["status"], *(_cell(values.get(m)) for m in metrics),
                     _cell(state["version"])])
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(f"best by {req.metric}: trial {best}" if best is not None else "no trial succeeded")


def _cell(value):
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def predict(args):
    """Print label and probability of each point under a stored model."""
    service = _service(args)
    points = [args.points[i : i + 2] for i in range(0, len(args.points), 2)]
    req = PredictRequest.model_validate({"points": points, "threshold": args.threshold},
                                        context=service.limits)
    version, scores, labels = service.predict(args.name, args.version, req.points, req.threshold)
    for point, score, label in zip(req.points, scores, labels, strict=True):
        print(json.dumps({"point": list(point), "label": label, "probability": score,
                          "version": version}))


def models(args):
    """Print every model of the store with its latest version and metrics."""
    for row in _service(args).list_models():
        print(json.dumps(row))


def _path(text):
    """An argparse type: a path, never empty (an empty one would silently mean none)."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _service(args):
    """Return a Service on the store of --store (default: the settings'), with no jobs."""
    settings = read_settings(**({"store_dir": args.store} if args.store else {}))
    return Service(settings, store=backends.build_store(settings))


def _request(args):
    """Return the training request (a JSON dict) of the command's arguments."""
    given = {"n": args.n, "noise": args.noise, "seed": args.data_seed}
    fields = DATA_SPECS[args.dataset].model_fields
    options = {"n": "--n", "noise": "--noise", "seed": "--data-seed"}
    for key in (k for k, v in given.items() if v is not None and k not in fields):
        raise ValueError(f"{options[key]} does not apply to the {args.dataset} data set"
                         " (the API refuses it too)")  # was silently ignored
    dataset = {"kind": args.dataset, **{k: v for k, v in given.items() if v is not None}}
    network = {"hidden": args.hidden, "activation": args.activation, "seed": args.seed,
               "output_activation": args.output_activation, "bias": not args.no_bias}
    training = {"epochs": args.epochs, "learning_rate": args.lr, "optimizer": args.optimizer,
                "loss": args.loss, "batch_size": args.batch_size, "starts": args.starts,
                "validation_split": args.validation_split, "l2": args.l2}
    return {"model": args.name or UNSAVED, "dataset": dataset, "network": network,
            "training": training}


def _parser():
    parser = argparse.ArgumentParser(prog="nnserve", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="serve the HTTP API with gunicorn")
    p.add_argument("--config", default=CONFIG,
                   help=f"gunicorn configuration (default: {CONFIG}, shipped in the package)")
    p.set_defaults(run=serve)
    _train_arguments(sub.add_parser("train", help="train locally and print the lab's report"))
    p = sub.add_parser("sweep", help="run a sweep's grid locally and print the table")
    p.add_argument("file", help="a JSON file holding the body of POST /v1/sweeps, or -")
    p.add_argument("--save", action="store_true",
                   help="save each trial as a version of the sweep's model, the best as 'best'")
    p.add_argument("--store", type=_path)
    p.set_defaults(run=sweep)
    p = sub.add_parser("predict", help="classify points with a stored model")
    p.add_argument("name")
    p.add_argument("points", type=float, nargs="+", metavar="X1 X2")
    p.add_argument("--version", type=int)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--store", type=_path)
    p.set_defaults(run=predict)
    p = sub.add_parser("models", help="list the models of a store")
    p.add_argument("--store", type=_path)
    p.set_defaults(run=models)
    return parser


def _train_arguments(p):
    defaults, arch = TrainingConfig(), Architecture()
    p.add_argument("--dataset", choices=sorted(DATASETS), default="xor")
    p.add_argument("--n", type=int, help="points of linear, circle, spiral (default: the API's)")
    p.add_argument("--noise", type=float, help="noise of circle and spiral")
    p.add_argument("--data-seed", type=int)
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
                   help="fraction of each class held out (drawn with the data set's seed)")
    p.add_argument("--l2", type=float, default=defaults.l2,
                   help="weight decay on the weights: the loss gains (l2 / 2) sum(W^2)")
    p.add_argument("--name", help="also save the model under this name in the store")
    p.add_argument("--plot", metavar="PNG", type=_path,
                   help="also write the figure to this PNG file")
    p.add_argument("--store", type=_path,
                   help="store directory (default: NNSERVE_STORE_DIR or model_store)")
    p.set_defaults(run=train)


if __name__ == "__main__":
    sys.exit(main())
