"""The web app over real HTTP on 127.0.0.1: every 4xx case, the admin page, the asap design and
a load test with many concurrent simulated observers."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time
from collections import Counter
from urllib.parse import urlparse

import numpy as np
import pytest
from study_fixtures import image_labels, make_study, simulated_side

from mdfloss.study.server import EXPORT_FIELDS, StudyServer
from mdfloss.study.store import Store


class Client:
    """Raw HTTP, so that paths reach the server exactly as written (no '..' clean-up)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method, path, body=None, raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        all_headers.update(headers or {})
        self.connection.request(method, path, body=data, headers=all_headers)
        response = self.connection.getresponse()
        payload = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(payload) if kind.startswith("application/json") else payload


@pytest.fixture
def served(tmp_path):
    study = make_study(tmp_path, trials=4)
    server = StudyServer(Store(study), port=0, seed=0).start()
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
        ("POST", "/session", None, b"\"just a string\"", 400, "expected a JSON object"),
        ("POST", "/session", {"external_id": 5}, None, 400, "external_id: expected a string"),
        ("GET", "/img/../" + study.name, None, None, 400, None),
        ("GET", "/img/..%2f" + study.name, None, None, 400, None),
        ("GET", "/img/000/../../" + study.name, None, None, 400, None),
        ("GET", "/img/%2e%2e/%2e%2e/etc/passwd", None, None, 400, None),
        ("GET", "/img/000/nothing.png", None, None, 404, None),
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
        labels = image_labels(study)
        rng = np.random.default_rng(0)
        for _ in range(3):
            token = start_session(client)
            while not (body := client.request("GET", f"/api/s/{token}/next")[1])["done"]:
                t = body["trial"]
                side = simulated_side({"left": labels[t["left"]], "right": labels[t["right"]]}, rng)
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
    server = StudyServer(Store(study), port=0, seed=0).start()
    labels = image_labels(study)
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
            side = simulated_side({"left": labels[t["left"]], "right": labels[t["right"]]}, rng)
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
