"""The command line: the README's examples run as written (on a temporary store), and refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..readme import code_blocks

BIN = Path(sys.executable).parent


def run(command, cwd):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_readme_commands_work_as_documented(tmp_path):
    lines = [line.split("#")[0].strip() for line in code_blocks("Command line")[0].splitlines()]
    commands = [line for line in lines if line.startswith("nnserve ") and " serve" not in line]
    outputs = {cmd.split()[1] + str(i): run(cmd, tmp_path) for i, cmd in enumerate(commands)}
    lab = next(out for key, out in outputs.items() if key.startswith("train"))
    assert "epoch 0 loss:" in lab and "epoch 1000 loss:" in lab
    assert "accuracy: 100.00%" in lab
    for cmd, out in zip(commands, outputs.values(), strict=True):  # dicts keep their order
        assert ("validation accuracy: " in out) == ("--validation-split" in cmd), cmd
    predictions = [json.loads(line) for key, out in outputs.items() if key.startswith("predict")
                   for line in out.splitlines()]
    assert [p["label"] for p in predictions] == [1, 0]
    listed = [json.loads(line) for key, out in outputs.items() if key.startswith("models")
              for line in out.splitlines()]
    assert [m["name"] for m in listed] == ["lin"]


def test_cli_reports_a_missing_model_without_a_traceback(tmp_path):
    done = subprocess.run([str(BIN / "nnserve"), "predict", "nope", "0.1", "0.2",
                           "--store", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "not found" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("arguments", "says"), [
    (["--lr", "-1"], "training.learning_rate"),
    (["--lr", "0"], "training.learning_rate"),
    (["--dataset", "circle", "--n", "1"], "dataset.circle.n"),
    (["--name", "BadName"], "model"),
    (["--epochs", "1000000"], "max_epochs"),
    (["--plot", "/nonexistent/folder/x.png"], "not writable"),
    (["--plot", "/tmp"], "it is a folder"),  # was found after training, losing the model
    (["--plot", "sub/"], "it is a folder"),
    (["--plot", ""], "--plot: must not be empty"),  # was silently no figure
    (["--plot", "/proc/x.png"], "cannot write the figure to '/proc/x.png'"),  # root: after
    (["--dataset", "xor", "--n", "5"], "--n does not apply to the xor data set"),  # ignored
    (["--dataset", "xor", "--noise", "0.5"], "--noise does not apply to the xor data set"),
])
def test_train_refuses_what_the_api_refuses_before_any_work(tmp_path, arguments, says):
    precious = tmp_path / "figure.png"
    precious.write_bytes(b"PRECIOUS")
    plot = [] if "--plot" in arguments else ["--plot", str(precious)]
    done = subprocess.run([str(BIN / "nnserve"), "train", *arguments, *plot, "--store",
                           str(tmp_path / "store")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout
    assert says in done.stderr and "Traceback" not in done.stderr
    assert "epoch 0" not in done.stdout  # refused before training
    assert precious.read_bytes() == b"PRECIOUS"
    assert not (tmp_path / "store").exists()


def test_readme_sweep_prints_the_table_and_saves_with_save(tmp_path):
    lines = [line.split("#")[0].strip() for line in code_blocks("Command line")[1].splitlines()]
    outputs = [run(line, tmp_path) for line in lines if line]
    for table in outputs[1:]:
        rows = table.splitlines()
        assert rows[0].split()[:4] == ["trial", "training.learning_rate", "network.seed",
                                       "status"]
        assert len(rows) == 6 and rows[-1].startswith("best by accuracy: trial ")
        best = rows[-1].split()[-1]
        assert sum(row.split()[0] == f"{best}*" for row in rows[1:5]) == 1
    assert [row.split()[-1] for row in outputs[1].splitlines()[1:5]] == ["-"] * 4
    assert [row.split()[-1] for row in outputs[2].splitlines()[1:5]] == ["1", "2", "3", "4"]
    listed = json.loads(run("nnserve models --store ./model_store", tmp_path))
    assert listed["name"] == "xor-lr" and listed["versions"] == 4


@pytest.mark.parametrize(("text", "says"), [
    ('{"model": "x", "model": "y"}', "malformed JSON: duplicate key 'model'"),
    ("[" * 100_000 + "]" * 100_000, "malformed JSON: maximum recursion depth"),  # a traceback
    ("[1, 2]", "nnserve: the request: Input should be a valid dictionary"),  # was "nnserve: : "
])
def test_a_sweep_file_is_read_as_the_api_reads_a_body(tmp_path, text, says):
    done = subprocess.run([str(BIN / "nnserve"), "sweep", "-", "--store", str(tmp_path)],
                          input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and says in done.stderr, done.stderr[-500:]
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_sweep_refuses_what_the_api_refuses_before_any_work(tmp_path):
    body = {"model": "x", "base": {"dataset": {"kind": "xor"}},
            "grid": {"training.learning_rate": [0.1, -1]}}
    done = subprocess.run([str(BIN / "nnserve"), "sweep", "-", "--save", "--store",
                           str(tmp_path / "store")], input=json.dumps(body), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stdout
    assert "training.learning_rate" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and not (tmp_path / "store").exists()


@pytest.mark.parametrize("command", [["serve"], ["models"], ["gunicorn"]])
def test_a_bad_setting_stops_start_up_with_one_line_naming_the_variable(tmp_path, command):
    """`nnserve serve`, gunicorn with the packaged configuration and the local commands: one
    line naming NNSERVE_MAX_WAIT_S and what it must be (it was a 28-line traceback naming
    max_wait_s)."""
    argv = ([sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf",
             "service:create_app()"] if command == ["gunicorn"] else [str(BIN / "nnserve"),
                                                                       *command])
    env = {**os.environ, "NNSERVE_MAX_WAIT_S": "-1", "NNSERVE_STORE_DIR": str(tmp_path),
           "PORT": "9"}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "nnserve: NNSERVE_MAX_WAIT_S='-1': input should be greater than or equal to 0"]


def test_train_refuses_a_store_it_cannot_save_in_before_any_work(tmp_path):
    # it trained to the end, then said "model store unavailable": the work was lost
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    done = subprocess.run([str(BIN / "nnserve"), "train", "--name", "m", "--store",
                           str(not_a_folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout
    assert "model store unavailable" in done.stderr and "Traceback" not in done.stderr
    assert "epoch 0" not in done.stdout


def test_ctrl_c_is_one_line_and_the_shells_status(tmp_path):
    import signal
    import time

    proc = subprocess.Popen([str(BIN / "nnserve"), "train", "--dataset", "spiral", "--epochs",
                             "100000", "--store", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("epoch 0 loss:")  # training
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err == "nnserve: interrupted\n", (proc.returncode, err)
