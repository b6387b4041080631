"""Load generators: Debian's wrk when installed, else a bounded Python client.

Both keep `concurrency` connections busy on 127.0.0.1 for `seconds` and return a
LoadResult. Both stop by themselves: wrk by its -d duration (and a subprocess
timeout), the Python client by its deadline and a cap on requests.
"""

import http.client
import multiprocessing
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

from .measure import percentile

WRK_THREADS = 2
PROCESSES = 4
MAX_REQUESTS_PER_CONNECTION = 100_000
START_S = 0.3  # the client processes start this long after they are asked, all at once
UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


@dataclass
class LoadResult:
    """Requests per second, latency percentiles and failed requests of one load run."""

    tool: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def pick(choice="auto"):
    """Return the load function: wrk when installed (and not told "python"), else Python."""
    if choice != "python" and shutil.which("wrk"):
        return wrk
    return python_client


def wrk(port, method, path, body, concurrency, seconds, timeout_s=None):
    """Return the LoadResult of wrk hitting path with concurrency connections.

    A request slower than timeout_s (wrk's default: 2 s) counts as an error."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(f'wrk.method = "{method}"\n')
        if body is not None:
            script.write('wrk.headers["Content-Type"] = "application/json"\n')
            script.write(f"wrk.body = [==[{body.decode()}]==]\n")  # JSON may hold "]]"
        script.flush()
        duration = max(1, round(seconds))
        out = subprocess.run(
            ["wrk", f"-t{min(WRK_THREADS, concurrency)}", f"-c{concurrency}", f"-d{duration}s",
             *([f"--timeout={timeout_s:g}s"] if timeout_s else []),
             "--latency", "-s", script.name, f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, timeout=duration + 30, check=True)
    if out.stderr.strip():
        raise RuntimeError(f"wrk complained: {out.stderr.strip()[:300]}")
    out = out.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {q: float(v) * UNITS_MS[u]
               for q, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    if len(latency) != 2:
        raise RuntimeError(f"wrk printed no latency distribution (no request done?):\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, socket.groups())) if socket else 0)
    return LoadResult("wrk", rate, latency["50"], latency["99"], errors)


def python_client(port, method, path, body, concurrency, seconds, timeout_s=None):
    """Return the LoadResult of a few processes, each with threads on kept-alive connections.

    A request slower than timeout_s (default 30 s) counts as an error."""
    processes = min(PROCESSES, concurrency)
    threads = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    start = time.time() + START_S
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.starmap(_client_process, [(port, method, path, body, n, start, seconds,
                                                timeout_s or 30) for n in threads])
    ms = [t for latencies, _ in parts for t in latencies]
    errors = sum(e for _, e in parts)
    if not ms:
        raise RuntimeError(f"no request to {path} finished in {seconds} s ({errors} failed)")
    return LoadResult("python client", len(ms) / seconds, percentile(ms, 50),
                      percentile(ms, 99), errors)


def _client_process(port, method, path, body, threads, start, seconds, timeout_s):
    """Return (latencies in ms, errors) of threads connections hammering path for seconds."""
    time.sleep(max(0.0, start - time.time()))
    deadline = start + seconds
    results = [([], [0]) for _ in range(threads)]
    workers = [threading.Thread(target=_client_thread,
                                args=(port, method, path, body, deadline, timeout_s, *result))
               for result in results]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [t for ms, _ in results for t in ms], sum(e[0] for _, e in results)


def _client_thread(port, method, path, body, deadline, timeout_s, ms, errors):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            if time.time() >= deadline:
                return
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status < 300
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
            if ok:
                ms.append((time.perf_counter() - started) * 1e3)
            else:
                errors[0] += 1
    finally:
        conn.close()
