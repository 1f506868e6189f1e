"""Load test of `mdfloss study serve` (waitress) on 127.0.0.1: concurrent observers, answers
stored, lost and duplicated, and request latencies.

For each number of concurrent observers: a fresh study is made with `mdfloss study create` from
a folder of images (default: the GAN study, 13 crops of 256 px, 4 losses), served by
`mdfloss study serve` in its own process, and every observer runs one whole session as the page
does, on one keep-alive connection and without pausing: GET /, POST /session, GET /s/<token>,
then per trial GET next, GET its three images, POST the answer (30 % of answers sent twice, as
a double click would). Afterwards the study file is read: every trial must have exactly one
answer. Real observers pause about 8 s per trial, so N clients that never pause load the server
like many more real ones.

    OMP_NUM_THREADS=1 python benchmarks/study_load.py [--observers 10,40,100] [--out FILE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from mdfloss._files import write_atomically

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("start", "session", "page", "next", "image", "answer")
MAX_OBSERVERS = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not listen on port {port} within {timeout} s")


class Observer(threading.Thread):
    """One session, every request timed by kind; statuses counted."""

    def __init__(self, port: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.rng = np.random.default_rng(seed)
        self.times: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[int] = Counter()
        self.acknowledged = 0
        self.error: Exception | None = None

    def call(self, kind: str, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        start = time.perf_counter()
        self.connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        self.times[kind].append(time.perf_counter() - start)
        self.statuses[response.status] += 1
        return response.status, payload

    def run(self) -> None:
        try:
            self.call("start", "GET", "/")
            token = json.loads(self.call("session", "POST", "/session", {"external_id": "load"})[1])["token"]
            self.call("page", "GET", f"/s/{token}")
            while not (body := json.loads(self.call("next", "GET", f"/api/s/{token}/next")[1]))["done"]:
                trial = body["trial"]
                for slot in ("reference", "left", "right"):
                    self.call("image", "GET", trial[slot])
                answer = {"trial_id": trial["trial_id"], "side": str(self.rng.choice(["left", "right"])), "rt_ms": 900}
                for _ in range(2 if self.rng.random() < 0.3 else 1):
                    if self.call("answer", "POST", f"/api/s/{token}/answer", answer)[0] == 200:
                        self.acknowledged += 1
        except Exception as error:  # reported in the table, never hidden
            self.error = error
        finally:
            self.connection.close()


def run_level(images: Path, observers: int, trials: int, work: Path) -> dict[str, object]:
    study = work / f"load-{observers}.sqlite"
    subprocess.run([sys.executable, "-m", "mdfloss.cli", "study", "create", "--results", str(images), "--trials",
                    str(trials), "--out", str(study)], check=True, capture_output=True)
    port = free_port()
    log_path = work / f"load-{observers}.log"
    with log_path.open("w") as log_file:  # a file, not a pipe: a full pipe would stall the server
        server = subprocess.Popen([sys.executable, "-m", "mdfloss.cli", "study", "serve", str(study), "--port",
                                   str(port), "--sessions-per-minute", "0"], stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        wait_for_port(port, server, log_path)
        clients = [Observer(port, seed) for seed in range(observers)]
        start = time.perf_counter()
        for client in clients:
            client.start()
        for client in clients:
            client.join(600)
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=60)
    log = log_path.read_text()
    with sqlite3.connect(study) as connection:
        trials_made = connection.execute("SELECT COUNT(*) FROM trial").fetchone()[0]
        rows, distinct = connection.execute("SELECT COUNT(*), COUNT(DISTINCT trial_id) FROM answer").fetchone()
    times = defaultdict(list)
    statuses: Counter[int] = Counter()
    for client in clients:
        statuses.update(client.statuses)
        for kind, values in client.times.items():
            times[kind] += values
    requests = sum(statuses.values())
    return {"observers": observers, "trials": trials_made, "stored": rows,
            "acknowledged": sum(c.acknowledged for c in clients), "lost": trials_made - distinct,
            "duplicated": rows - distinct, "refused": statuses[409] + statuses[410],
            "other": sum(n for s, n in statuses.items() if s not in (200, 201, 409, 410)),
            "errors": sum(c.error is not None for c in clients), "tracebacks": log.count("Traceback"),
            "requests": requests, "seconds": elapsed, "times": times}


def ms(values: list[float], q: float) -> str:
    return f"{1000 * float(np.percentile(values, q)):.0f}" if values else "-"


def table(results: list[dict[str, object]], command: str) -> str:
    lines = [f"`{command}`", "",
             "| concurrent observers | answers stored | lost | duplicated | double submits refused | other 4xx/5xx "
             "| client errors | server tracebacks | requests | req/s | answer p50 / p95 ms | next p95 ms | image p95 ms | session p95 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        t = r["times"]
        lines.append(f"| {r['observers']} | {r['stored']} of {r['trials']} | {r['lost']} | {r['duplicated']} | "
                     f"{r['refused']} | {r['other']} | {r['errors']} | {r['tracebacks']} | {r['requests']} | "
                     f"{r['requests'] / r['seconds']:.0f} | {ms(t['answer'], 50)} / {ms(t['answer'], 95)} | "
                     f"{ms(t['next'], 95)} | {ms(t['image'], 95)} | {ms(t['session'], 95)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=str(ROOT / "docs" / "results" / "gan" / "study"),
                        help="a study folder layout (ref/ + one folder per condition)")
    parser.add_argument("--observers", default="10,40,100", help="comma-separated numbers of concurrent observers")
    parser.add_argument("--trials", type=int, default=20, help="test comparisons per session (default 20)")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    levels = [int(n) for n in args.observers.split(",")]
    if not all(1 <= n <= MAX_OBSERVERS for n in levels):
        parser.error(f"--observers: expected numbers from 1 to {MAX_OBSERVERS}, got {args.observers}")
    with tempfile.TemporaryDirectory(prefix="study-load-") as work:
        results = [run_level(Path(args.images), n, args.trials, Path(work)) for n in levels]
    command = shlex.join(["python", "benchmarks/study_load.py", *sys.argv[1:]])
    text = table(results, command)
    print(text, end="")
    if args.out:
        write_atomically(args.out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    failed = any(r["lost"] or r["duplicated"] or r["other"] or r["errors"] or r["tracebacks"]
                 or r["stored"] != r["acknowledged"] for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
