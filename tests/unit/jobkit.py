"""What the job tests share: progress reports, an execute() that runs until told to stop."""

import time

HISTORY = {"epoch": [0], "loss": [0.5], "accuracy": [0.5]}


def progress(epoch, epochs=10):
    return {"epoch": epoch, "epochs": epochs, "loss": 1 / (epoch + 1), "accuracy": 0.5}


def loop_until_stopped(job, report):
    """An execute() that trains until report says stop, then returns a result it must not keep."""
    epoch = 0
    while not report(progress(epoch), HISTORY):
        epoch += 1
        time.sleep(0.005)
    return {"name": job["model"], "version": 1, "metrics": {}}


def run_one(jobs, runner, execute_started=None, model="xor"):
    """Create a job, wake the runner, wait until it runs (or ends); return the job id."""
    job_id = jobs.create(model, {}, 10)["id"]
    runner.wake()
    if execute_started is not None:
        assert execute_started.wait(2.0)
    return job_id
