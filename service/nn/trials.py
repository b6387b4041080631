"""The trials of one fit_many() pass: a stack of their networks, trained epoch by epoch."""

import math
from dataclasses import dataclass, field

import numpy as np

from . import history
from .batches import Batches, evaluate
from .network import params_from_theta
from .stack import Stack
from .watch import METRICS, REASONS, Curves

# Rows of each start's loss curve in "probes": a line to draw, kept small (cold loads parse it).
MAX_PROBE_HISTORY = 30


@dataclass
class FitResult:
    """What a fit returns: the weights (None if it diverged), metrics, history, why it stopped."""

    params: dict | None
    epochs_run: int
    loss: float
    accuracy: float
    stop_reason: str
    history: dict = field(default_factory=lambda: {"epoch": [], "loss": [], "accuracy": []})
    validation_loss: float | None = None
    validation_accuracy: float | None = None
    best_epoch: int | None = None


class _Trial:
    """One config's networks: its generator, its starts in the race, and how it ended."""

    def __init__(self, config, first_id):
        self.config, self.rng = config, np.random.default_rng(config.seed)
        self.ids = list(range(first_id, first_id + config.starts))
        self.live, self.probing, self.frozen = config.starts, config.starts > 1, []
        self.end = None  # (entry, reason); an entry is (best watched, id, weights, epoch, ...)

    def stop(self, entry, reason):
        """Take in one of its networks' end: the trial's end, or one start fewer in the race."""
        self.live -= 1
        if reason in ("patience", "diverged") and self.probing and self.live:
            if reason == "patience":
                self.frozen.append(entry)  # a candidate if no start is left in the race
            return
        if reason in ("patience", "diverged") and self.frozen:
            entry = min(self.frozen + [entry] * (reason == "patience"), key=lambda e: e[:2])
            reason = "patience"
        self.end = (entry, reason)


class Group:
    """The trials of one shape, trained together; run() returns their FitResults in order."""

    def __init__(self, arch, sets, configs, on_progress, report_every):
        self.arch, self.sets, self.config = arch, sets, configs[0]
        self.on_progress, self.report_every = on_progress, report_every
        self.trials = []
        for config in configs:
            self.trials.append(_Trial(config, sum(len(t.ids) for t in self.trials)))
        self.trial_of = np.repeat(np.arange(len(configs)), self.config.starts)
        self.stack = Stack.start(arch, sets, self.trials)
        epochs = self.config.epochs
        self.stride = history.stride(epochs)
        self.probe_end = min(self.config.probe_epochs, epochs) if self.config.starts > 1 else 0
        self.every_epoch = any(c.watches() for c in configs)
        self.wants_accuracy = any(c.target_accuracy is not None for c in configs)
        self.monitors_validation = self.config.monitor == "validation_loss"
        keys = METRICS if sets[1] is not None else METRICS[:2]
        self.curves = Curves(len(self.trial_of), keys)

    def run(self):
        """Train every trial to its end; return their FitResults."""
        loss, measured = self.config.loss, self._next_measured(0)
        for epoch in range(self.config.epochs):
            s = self.stack
            if epoch != measured:
                for batch in s.data.epoch(s.rngs):
                    evaluate(s.params, batch, loss, s.grads)
                    s.step()
                continue
            self._measured_epoch(epoch)
            if self.stack is None:
                break
            measured = self._next_measured(epoch + 1)
        if self.stack is not None:
            self._end(self.config.epochs, range(self.stack.m), ["epochs"] * self.stack.m)
        return [self._result(trial) for trial in self.trials]

    def _next_measured(self, epoch):
        """Return the first epoch from epoch on that someone looks at."""
        if self.every_epoch:
            return epoch
        following = -(-epoch // self.stride) * self.stride
        if self.on_progress is not None:
            following = min(following, -(-epoch // self.report_every) * self.report_every)
        return min(following, self.probe_end - 1) if epoch < self.probe_end else following

    def _reports(self, epoch):
        return self.on_progress is not None and epoch % self.report_every == 0

    def _measured_epoch(self, epoch):
        """Run one epoch's batches, measuring; end the networks that stop before the update."""
        s, loss = self.stack, self.config.loss
        shown = epoch % self.stride == 0 or self._reports(epoch)
        wants_acc = shown or self.wants_accuracy
        val_loss, val_acc = s.measure(loss, wants_acc, shown or self.monitors_validation)
        total = right = 0
        for k, batch in enumerate(s.data.epoch(s.rngs)):
            loss_sum, batch_right = evaluate(s.params, batch, loss, s.grads, measure=True,
                                             count_right=wants_acc)
            total, right = total + loss_sum, right + batch_right
            if k == s.data.last:
                metrics = {"loss": total / s.data.n,
                           "accuracy": right / s.data.n if wants_acc else None,
                           "validation_loss": val_loss, "validation_accuracy": val_acc}
                dropped = self._observe(epoch, metrics)
            s.step()
        if epoch == self.probe_end - 1:
            dropped |= self._choose_starts(dropped)
        if dropped:
            self.stack = s.keep([row for row in range(s.m) if row not in dropped])

    def _observe(self, epoch, metrics):
        """Pass a measured epoch on (curves, callback, rules); return the rows that end."""
        s, loss = self.stack, metrics["loss"]
        if epoch % self.stride == 0:
            self.curves.record(epoch, s.ids, metrics)
        if self._reports(epoch) and self.on_progress(epoch, self._progress(metrics)):
            return self._end(epoch, range(s.m), ["cancelled"] * s.m)
        self.watched = metrics["validation_loss"] if self.monitors_validation else loss
        if self.every_epoch:
            codes, improved = s.rules.observe(epoch, loss, metrics["accuracy"], self.watched)
            if improved is not None:
                s.keep_best(improved)
        elif np.isfinite(loss).all():  # nothing watches: only a divergence ends a network
            return set()
        else:
            codes = np.where(np.isfinite(loss), 0, 1)
        if codes is None:
            return set()
        rows = np.flatnonzero(codes)
        return self._end(epoch, rows, [REASONS[c] for c in codes[rows]], loss)

    def _progress(self, metrics):
        """Return {trial: (loss, accuracy, weights)} of its best network still training;
        weights() returns a copy of that network's flat weights while the callback runs."""
        rows, stack = {}, self.stack
        for row, (loss, acc) in enumerate(zip(metrics["loss"].tolist(),
                                              metrics["accuracy"].tolist(), strict=True)):
            trial = int(self.trial_of[stack.ids[row]])
            if trial not in rows or loss < rows[trial][0]:
                rows[trial] = (loss, acc, lambda row=row: stack.weights(row))
        return rows

    def _end(self, epoch, rows, reasons, losses=None):
        """End the networks numbered rows for reasons; return the rows to drop from the stack."""
        s, drop = self.stack, set()
        for row, reason in zip(rows, reasons, strict=True):
            trial = self.trials[self.trial_of[s.ids[row]]]
            drop.add(row)
            if trial.end is not None:
                continue
            restored = bool(s.rules.restores[row]) and reason in ("patience", "epochs")
            loss = math.nan if losses is None else float(losses[row])
            entry = (float(s.rules.best[row]), int(s.ids[row]), s.weights(row, restored), epoch,
                     int(s.rules.best_epoch[row]) if restored else None, loss)
            trial.stop(entry, reason)
        ended = {row for row in range(s.m) if self.trials[self.trial_of[s.ids[row]]].end}
        return drop | ended

    def _choose_starts(self, dropped):
        """Keep each probing trial's start with the lowest monitored loss; return the others."""
        s, best = self.stack, {}
        for row in range(s.m):
            trial = self.trials[self.trial_of[s.ids[row]]]
            if trial.probing and row not in dropped:
                if trial not in best or self.watched[row] < self.watched[best[trial]]:
                    best[trial] = row
        for trial in best:
            trial.probing, trial.live, trial.frozen = False, 1, []
        return {row for row in range(s.m) if row not in dropped and self.trials[
            self.trial_of[s.ids[row]]] in best and row not in best.values()}

    def _result(self, trial):
        """Return the FitResult of an ended trial, measuring its weights with full passes.

        The history ends with the weights returned, unless those are a best epoch's
        (restore_best_weights): then it is the measured curve, best_epoch naming the row."""
        (_, net, theta, epochs_run, best_epoch, loss), reason = trial.end
        final = self._final(theta) if reason != "diverged" else None
        curve = self.curves.of(net)
        if final is None:
            return FitResult(None, epochs_run, loss, math.nan, "diverged", curve)
        if best_epoch is None and (not curve["epoch"] or curve["epoch"][-1] != epochs_run):
            curve["epoch"].append(epochs_run)
            for key in self.curves.keys:
                curve[key].append(final[key])
        losses = [key for key in self.curves.keys if key.endswith("loss")]  # a line a start
        probes = [{"start": k, **self.curves.of(i, MAX_PROBE_HISTORY, self.probe_end, losses),
                   "continued": i == net}
                  for k, i in enumerate(trial.ids)] if len(trial.ids) > 1 else []
        return FitResult(params_from_theta(self.arch, theta), epochs_run, final["loss"],
                         final["accuracy"], reason, {**curve, "probes": probes},
                         final.get("validation_loss"), final.get("validation_accuracy"),
                         best_epoch)

    def _final(self, theta):
        """Return the metrics of one network's weights on each set, None if not finite."""
        if not np.all(np.isfinite(theta)):
            return None
        params, metrics = params_from_theta(self.arch, theta), {}
        for prefix, data in (("", self.sets[0]), ("validation_", self.sets[1])):
            if data is not None:
                batches = Batches(self.arch, *data)
                loss_sum, right = evaluate(params, batches.whole(), self.config.loss,
                                           measure=True, count_right=True)
                metrics[prefix + "loss"] = float(loss_sum[0]) / batches.n
                metrics[prefix + "accuracy"] = int(right[0]) / batches.n
        return metrics if math.isfinite(metrics["loss"]) else None
