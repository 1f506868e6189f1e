"""The web app on its production server over real HTTP on 127.0.0.1: every 4xx case (and the
probe against `mdfloss study serve`), request bounds, cookie resume, opaque image names, the
admin page, the asap design and a load test with many concurrent simulated observers."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from study_fixtures import make_study, simulated_side, trial_sides
from study_probe import probe

from mdfloss.study.bounds import RateLimit
from mdfloss.study.server import COOKIE, EXPORT_FIELDS
from mdfloss.study.serving import StudyServer
from mdfloss.study.store import Store


class Client:
    """Raw HTTP, so that paths reach the server exactly as written (no '..' clean-up)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method, path, body=None, raw=None, headers=None):
        status, payload, _ = self.exchange(method, path, body, raw, headers)
        return status, payload

    def exchange(self, method, path, body=None, raw=None, headers=None):
        """Status, body (parsed when JSON) and the response headers."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        all_headers.update(headers or {})
        self.connection.request(method, path, body=data, headers=all_headers)
        response = self.connection.getresponse()
        payload = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(payload) if kind.startswith("application/json") else payload, response


@pytest.fixture
def served(tmp_path):
    study = make_study(tmp_path, trials=4)
    server = StudyServer(Store(study), port=0, seed=0, sessions_per_minute=0).start()
    yield study, server
    server.stop()


def start_session(client, external_id=None):
    status, body = client.request("POST", "/session", {"external_id": external_id})
    assert status == 201
    return body["token"]


def test_a_whole_session_over_http(served):
    study, server = served
    client = Client(server.url)
    status, page = client.request("GET", "/")
    assert status == 200 and b"closer to the reference" in page
    token = start_session(client, "P-17")
    status, page = client.request("GET", f"/s/{token}")
    assert status == 200 and b"study.js" in page
    answered = 0
    while True:
        status, body = client.request("GET", f"/api/s/{token}/next")
        assert status == 200
        if body["done"]:
            break
        trial = body["trial"]
        for key in ("reference", "left", "right"):
            status, png = client.request("GET", trial[key])
            assert status == 200 and png[:4] == b"\x89PNG"
        assert trial["width"] == 32 and trial["total"] == 5
        status, result = client.request("POST", f"/api/s/{token}/answer",
                                        {"trial_id": trial["trial_id"], "side": "right", "rt_ms": 640})
        assert status == 200 and result["stored"]
        answered += 1
    assert answered == 5 and body["code"] == Store(study).completion_code(token)


def test_every_bad_request_gets_a_clear_4xx(served):
    study, server = served
    client = Client(server.url)
    token = start_session(client)
    other = start_session(client)
    first = client.request("GET", f"/api/s/{token}/next")[1]
    trial, following = first["trial"], first["next"]
    foreign = client.request("GET", f"/api/s/{other}/next")[1]["trial"]
    answer = f"/api/s/{token}/answer"
    cases = [
        ("GET", "/api/s/unknown-token/next", None, None, 404, "unknown session"),
        ("POST", "/api/s/unknown-token/answer", {"trial_id": 1, "side": "left", "rt_ms": 1}, None, 404, "unknown session"),
        ("GET", "/s/unknown-token", None, None, 404, None),
        ("POST", answer, None, b"{not json", 400, "expected a JSON object"),
        ("POST", answer, None, b"[1, 2]", 400, "expected a JSON object"),
        ("POST", answer, {"side": "left", "rt_ms": 3}, None, 400, "trial_id: expected an integer"),
        ("POST", answer, {"trial_id": trial["trial_id"], "side": "middle", "rt_ms": 3}, None, 400, "side: expected"),
        ("POST", answer, {"trial_id": trial["trial_id"], "side": "left", "rt_ms": -1}, None, 400, "rt_ms: expected"),
        ("POST", answer, {"trial_id": following["trial_id"], "side": "left", "rt_ms": 3}, None, 409, "not the trial being shown"),
        ("POST", answer, {"trial_id": foreign["trial_id"], "side": "left", "rt_ms": 3}, None, 404, "not a trial of this session"),
        ("POST", answer, {"trial_id": 10**9, "side": "left", "rt_ms": 3}, None, 404, "not a trial of this session"),
        ("POST", answer, {"trial_id": 2**63, "side": "left", "rt_ms": 3}, None, 400, "trial_id: expected an integer"),
        ("POST", answer, {"trial_id": 10**400, "side": "left", "rt_ms": 3}, None, 400, "an integer of 1329 bits"),
        ("POST", answer, None, b"[" * 15000, 400, "are not JSON"),
        ("POST", answer, {"trial_id": trial["trial_id"], "side": "left", "rt_ms": 3, "x": 1}, None, 400,
         "expected only the fields trial_id, side, rt_ms, got also 'x'"),
        ("POST", answer, {"trial_id": trial["trial_id"], "side": "left", "rt_ms": 3, "x": "y" * 20000}, None, 413,
         "body: expected at most 16384 bytes"),
        ("POST", "/session", {"external_id": "x" * 201}, None, 400, "external_id: expected at most 200 characters, got 201"),
        ("POST", "/session", None, b"\"just a string\"", 400, "expected a JSON object"),
        ("POST", "/session", {"external_id": 5}, None, 400, "external_id: expected a string"),
        ("GET", "/img/../" + study.name, None, None, 404, None),
        ("GET", "/img/..%2f" + study.name, None, None, 404, None),
        ("GET", "/img/000/../../" + study.name, None, None, 404, None),
        ("GET", "/img/%2e%2e/%2e%2e/etc/passwd", None, None, 404, None),
        ("GET", "/img/000/00.png", None, None, 404, None),
        ("GET", "/admin", None, None, 403, None),
        ("GET", "/admin?token=wrong", None, None, 403, None),
        ("GET", "/admin/export.csv?token=wrong", None, None, 403, None),
    ]
    for method, path, body, raw, expected, message in cases:
        status, reply = client.request(method, path, body, raw)
        assert status == expected, (method, path, status, reply)
        if message is not None:
            assert message in reply["error"], (path, reply)
    status, _ = client.request("POST", answer, {"trial_id": trial["trial_id"], "side": "left", "rt_ms": 3})
    assert status == 200
    status, reply = client.request("POST", answer, {"trial_id": trial["trial_id"], "side": "right", "rt_ms": 3})
    assert status == 409 and "already answered" in reply["error"]
    while not (body := client.request("GET", f"/api/s/{token}/next")[1])["done"]:
        client.request("POST", answer, {"trial_id": body["trial"]["trial_id"], "side": "left", "rt_ms": 3})
    status, reply = client.request("POST", answer, {"trial_id": trial["trial_id"], "side": "left", "rt_ms": 3})
    assert status == 410 and "finished" in reply["error"]
    rows = sqlite3.connect(study).execute("SELECT side FROM answer a JOIN trial t ON t.id = a.trial_id "
                                          "WHERE t.id = ?", (trial["trial_id"],)).fetchall()
    assert rows == [("left",)]  # nothing the bad requests sent changed the stored answer


def test_admin_page_and_export_behind_the_token(served):
    study, server = served
    client = Client(server.url)
    token = start_session(client, "lab-3")
    trial = client.request("GET", f"/api/s/{token}/next")[1]["trial"]
    client.request("POST", f"/api/s/{token}/answer", {"trial_id": trial["trial_id"], "side": "left", "rt_ms": 700})
    status, page = client.request("GET", "/admin?token=secret-admin")
    assert status == 200 and b"lab-3" in page and b"1 / 5" in page and b"golden passed" in page
    status, text = client.request("GET", "/admin/export.csv?token=secret-admin")
    lines = text.decode().splitlines()
    assert status == 200 and lines[0] == ",".join(EXPORT_FIELDS) and len(lines) == 2


def test_asap_study_serves_sessions_and_refills_its_queues(tmp_path):
    study = make_study(tmp_path, design="asap", trials=6, images=2)
    store = Store(study)
    server = StudyServer(store, port=0, seed=0).start()
    try:
        client = Client(server.url)
        rng = np.random.default_rng(0)
        for _ in range(3):
            token = start_session(client)
            while not (body := client.request("GET", f"/api/s/{token}/next")[1])["done"]:
                t = body["trial"]
                side = simulated_side(trial_sides(study, t["trial_id"]), rng)
                assert client.request("POST", f"/api/s/{token}/answer",
                                      {"trial_id": t["trial_id"], "side": side, "rt_ms": 5})[0] == 200
        scheduler = server.app.extensions["asap"]
        deadline = time.time() + 10
        while time.time() < deadline and not all(scheduler.queues.get(b) for b in scheduler.blocks):
            time.sleep(0.05)
        assert all(len(scheduler.queues[b]) >= 1 for b in scheduler.blocks)
        assert sqlite3.connect(study).execute("SELECT COUNT(*) FROM answer").fetchone()[0] == 3 * 7
    finally:
        server.stop()


def test_load_many_concurrent_observers_lose_and_duplicate_nothing(tmp_path, capsys):
    observers, trials = 40, 6
    study = make_study(tmp_path, trials=trials, images=3)
    server = StudyServer(Store(study), port=0, seed=0, sessions_per_minute=0).start()
    statuses: Counter[int] = Counter()
    sent: list[tuple[str, int]] = []
    lock = threading.Lock()
    requests = 0

    def observer(k: int) -> None:
        nonlocal requests
        client = Client(server.url)
        rng = np.random.default_rng(k)
        token = start_session(client, f"sim-{k}")
        count = 1
        while True:
            status, body = client.request("GET", f"/api/s/{token}/next")
            count += 1
            if body["done"]:
                break
            t = body["trial"]
            side = simulated_side(trial_sides(study, t["trial_id"]), rng)
            for _ in range(2 if rng.random() < 0.3 else 1):  # some double submits
                status, _ = client.request("POST", f"/api/s/{token}/answer",
                                           {"trial_id": t["trial_id"], "side": side, "rt_ms": 300})
                count += 1
                with lock:
                    statuses[status] += 1
                    if status == 200:
                        sent.append((token, t["trial_id"]))
        with lock:
            requests += count

    start = time.perf_counter()
    threads = [threading.Thread(target=observer, args=(k,)) for k in range(observers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - start
    server.stop()
    connection = sqlite3.connect(study)
    stored = connection.execute("SELECT COUNT(*), COUNT(DISTINCT trial_id) FROM answer").fetchone()
    expected = connection.execute("SELECT COUNT(*) FROM trial").fetchone()[0]
    lost = expected - stored[1]
    duplicated = stored[0] - stored[1]
    with capsys.disabled():
        print(f"\nload test: {observers} observers, {stored[0]} answers stored, {lost} lost, {duplicated} duplicated, "
              f"{statuses[409] + statuses[410]} double submits refused (409/410), {requests} requests in {elapsed:.1f} s "
              f"= {requests / elapsed:.0f} req/s")
    assert not any(t.is_alive() for t in threads)
    assert lost == 0 and duplicated == 0 and len(sent) == expected == observers * (trials + 1)
    assert set(statuses) <= {200, 409, 410}  # a repeat of the last answer finds the session finished (410)
    assert connection.execute("SELECT COUNT(*) FROM observer WHERE finished IS NOT NULL").fetchone()[0] == observers


def test_image_names_are_opaque_and_new_in_every_trial(served):
    """A script cannot spot golden trials (or any condition) from the URLs: every image of every
    trial has its own name, and the name serves that trial's file."""
    study, server = served
    client = Client(server.url)
    store = Store(study)
    token = start_session(client)
    urls, golden_seen = [], False
    while not (body := client.request("GET", f"/api/s/{token}/next")[1])["done"]:
        t = body["trial"]
        trial = next(x for x in store.upcoming(token, 1)[0])
        for slot, path in (("reference", trial.reference), ("left", trial.left), ("right", trial.right)):
            status, png = client.request("GET", t[slot])
            assert status == 200 and png == (store.image_dir / path).read_bytes()
        urls += [t["reference"], t["left"], t["right"]]
        golden_seen |= trial.kind == "golden"
        client.request("POST", f"/api/s/{token}/answer", {"trial_id": t["trial_id"], "side": "left", "rt_ms": 5})
    assert golden_seen and len(set(urls)) == len(urls) == 15
    assert not any(part in url for url in urls for part in ("000", "001", "l1", "mdf", "ref"))


def test_the_start_page_estimates_the_session_length_from_its_trials(served):
    status, page = Client(served[1].url).request("GET", "/")
    assert status == 200 and b"has 5 comparisons and takes about 1 minute." in page  # 4 + 1 golden, 8 s each


def test_a_browser_returning_to_the_start_page_resumes_its_session(served):
    study, server = served
    client = Client(server.url)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, response = client.exchange("POST", "/session", raw=b"external_id=P-1", headers=form)
    url = response.getheader("Location")
    assert status == 303 and url.startswith("/s/")
    status, page, response = client.exchange("GET", url)
    cookie = response.getheader("Set-Cookie")
    assert status == 200 and cookie.startswith(f"{COOKIE}={url[3:]};") and "HttpOnly" in cookie
    assert f"{server.url}{url}".encode() in page  # the resume link is shown
    jar = {"Cookie": cookie.split(";")[0]}
    assert client.exchange("GET", "/", headers=jar)[2].getheader("Location") == url                # Back, a bookmark
    assert client.exchange("GET", "/?pid=P-1", headers=jar)[2].getheader("Location") == url
    again = client.exchange("POST", "/session", raw=b"external_id=P-1", headers={**form, **jar})[2]  # Start again
    assert again.getheader("Location") == url
    assert client.exchange("GET", "/", headers={"Cookie": f"{COOKIE}=forged"})[0] == 200
    other = client.exchange("POST", "/session", raw=b"external_id=P-2", headers={**form, **jar})[2]  # another participant
    assert other.getheader("Location") not in (None, url)
    token = url[3:]
    while not (body := client.request("GET", f"/api/s/{token}/next")[1])["done"]:
        client.request("POST", f"/api/s/{token}/answer", {"trial_id": body["trial"]["trial_id"], "side": "left", "rt_ms": 5})
    assert client.exchange("GET", "/", headers=jar)[0] == 200  # finished: the next observer starts afresh
    status, page = client.request("GET", url)
    assert status == 200 and body["code"].encode() in page and b'id="trial" class="trial waiting" hidden' in page
    assert sqlite3.connect(study).execute("SELECT COUNT(*) FROM observer").fetchone()[0] == 2


def test_an_unknown_session_link_shows_the_html_error_page(served):
    status, page, response = Client(served[1].url).exchange("GET", "/s/no-such-session")
    assert status == 404 and response.getheader("Content-Type").startswith("text/html")
    assert b"unknown session link" in page and b"Back to the start page" in page


def test_admin_page_counts_the_pairs_never_given(served):
    _, server = served
    client = Client(server.url)
    assert b"6 test pairs, 6 never given yet;\n     each given 0&ndash;0 times" in client.request("GET", "/admin?token=secret-admin")[1]
    start_session(client)  # 4 of the 6 pairs (2 images x 3 losses)
    assert b"6 test pairs, 2 never given yet;\n     each given 0&ndash;1 times" in client.request("GET", "/admin?token=secret-admin")[1]
    for _ in range(2):
        start_session(client)
    assert b"6 test pairs;\n     each given 2&ndash;2 times" in client.request("GET", "/admin?token=secret-admin")[1]


def test_new_sessions_per_address_are_limited_behind_a_trusted_proxy(tmp_path):
    study = make_study(tmp_path, trials=2)
    server = StudyServer(Store(study), port=0, seed=0, sessions_per_minute=2, trusted_proxy="127.0.0.1").start()
    try:
        client = Client(server.url)
        lab = {"X-Forwarded-For": "10.0.0.7"}
        assert [client.request("POST", "/session", {}, headers=lab)[0] for _ in range(2)] == [201, 201]
        status, body, response = client.exchange("POST", "/session", {}, headers=lab)
        assert status == 429 and "new sessions: expected at most 2 per client address per 60 s" in body["error"]
        assert 1 <= int(response.getheader("Retry-After")) <= 61
        assert client.request("POST", "/session", {}, headers={"X-Forwarded-For": "10.0.0.8"})[0] == 201
    finally:
        server.stop()


def test_rate_limit_window_slides():
    now = [0.0]
    limit = RateLimit(2, window=60, clock=lambda: now[0])
    limit.take("a", "x"), limit.take("a", "x"), limit.take("b", "x")
    with pytest.raises(Exception, match="at most 2 per client address per 60 s"):
        limit.take("a", "x")
    now[0] = 60.5
    limit.take("a", "x")
    assert set(limit.events) == {"a"}  # b's expired events are dropped


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_of_mdfloss_study_serve_gets_a_4xx_for_every_bad_request_and_no_500(tmp_path):
    """tests/study_probe.py against the real command; its log must hold no traceback."""
    study = make_study(tmp_path, trials=2)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mdfloss.cli", "study", "serve", str(study), "--port", str(port),
                               "--sessions-per-minute", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        cases = probe(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    bad = [(c.name, c.reply.status, c.reply.error()[:120]) for c in cases if not c.ok]
    assert not bad, bad
    assert len(cases) >= 30 and "Traceback" not in err and " -> 500" not in err, err[-2000:]
    assert "admin page: http://127.0.0.1" in out
    connection = sqlite3.connect(study)
    assert connection.execute("SELECT COUNT(*) FROM answer").fetchone()[0] == 1
    assert connection.execute("SELECT MAX(LENGTH(external_id)) FROM observer").fetchone()[0] == len("probe")
    assert Path(study).stat().st_size < 200_000


def test_many_idle_browser_connections_do_not_lock_out_a_new_observer(served):
    """Browsers keep several idle keep-alive connections each; 150 of them must not use up the server."""
    _, server = served
    port = int(server.url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(150)]
    try:
        time.sleep(0.3)
        client = Client(server.url)
        client.connection.timeout = 5
        assert client.request("GET", "/")[0] == 200
    finally:
        for s in idle:
            s.close()
