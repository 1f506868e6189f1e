"""Malformed and oversized requests against a live study server on this machine; each must get
its 4xx, none a 500.

    python tests/study_probe.py http://127.0.0.1:8000        # prints one line per case

Bounded: about 45 requests, at most MAX_SESSIONS new sessions (the last ones to reach the
per-address limit, 429), 10 s per request, loopback addresses only. It starts sessions and
answers one trial, so point it at a scratch copy of a study, never at one observers use.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import sys
from dataclasses import dataclass
from urllib.parse import urlparse

MAX_SESSIONS = 60
BIG = 3 * 1024 * 1024


@dataclass
class Reply:
    status: int
    kind: str
    body: bytes

    def error(self) -> str:
        """The JSON error message, or the whole body as text."""
        if self.kind.startswith("application/json"):
            return str(json.loads(self.body).get("error", ""))
        return self.body.decode("utf-8", "replace")


class Client:
    """Raw HTTP to one loopback server, so that paths and bodies arrive exactly as written."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        address = socket.gethostbyname(parsed.hostname or "")
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"url: expected a server on this machine (127.0.0.1, localhost), got {url}")
        self.host, self.port = address, parsed.port or 80

    def send(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, response.getheader("Content-Type", ""), response.read())
        except (ConnectionError, http.client.HTTPException):  # the server may close on an oversized body
            return Reply(0, "", b"")
        finally:
            connection.close()

    def json(self, method: str, path: str, value: object = None, raw: bytes | None = None) -> Reply:
        data = raw if raw is not None else json.dumps(value).encode()
        return self.send(method, path, data, {"Content-Type": "application/json"})


@dataclass
class Case:
    name: str
    expected: tuple[int, ...]
    reply: Reply
    message: str = ""
    """A part of the error message the reply must contain."""

    @property
    def ok(self) -> bool:
        return self.reply.status in self.expected and self.message in self.reply.error()


def with_rt(answer: dict[str, object], rt_ms: str) -> bytes:
    """The answer as JSON text with ``rt_ms`` written as given (JSON's ``NaN``, ``1e400``...)."""
    return f'{{"trial_id": {answer["trial_id"]}, "side": "{answer["side"]}", "rt_ms": {rt_ms}}}'.encode()


def probe(url: str) -> list[Case]:
    """Send every case to the server at ``url``; the cases with their replies."""
    client = Client(url)
    started = client.json("POST", "/session", {"external_id": "probe"})
    if started.status != 201:
        raise RuntimeError(f"url: expected a study server at {url} that starts sessions, got {started.status}")
    token = json.loads(started.body)["token"]
    trial = json.loads(client.send("GET", f"/api/s/{token}/next").body)["trial"]
    answer = f"/api/s/{token}/answer"
    good = {"trial_id": trial["trial_id"], "side": "left", "rt_ms": 500}
    cases = [
        Case("answer: trial_id 2**63", (400,), client.json("POST", answer, {**good, "trial_id": 2**63}), "trial_id: expected"),
        Case("answer: trial_id 10**400", (400,), client.json("POST", answer, {**good, "trial_id": 10**400}), "trial_id: expected"),
        Case("answer: trial_id -1", (400,), client.json("POST", answer, {**good, "trial_id": -1}), "trial_id: expected"),
        Case("answer: trial_id 1.5", (400,), client.json("POST", answer, {**good, "trial_id": 1.5}), "trial_id: expected"),
        Case("answer: rt_ms 1e400 (inf)", (400,), client.json("POST", answer, raw=with_rt(good, "1e400")), "rt_ms: expected"),
        Case("answer: rt_ms NaN", (400,), client.json("POST", answer, raw=with_rt(good, "NaN")), "rt_ms: expected"),
        Case("answer: side null", (400,), client.json("POST", answer, {**good, "side": None}), "side: expected"),
        Case("answer: 15,000 nested [", (400,), client.json("POST", answer, raw=b"[" * 15000), "not JSON"),
        Case("answer: 100,000 nested [", (413, 0), client.json("POST", answer, raw=b"[" * 100_000)),
        Case("answer: 20 KB body", (413,), client.json("POST", answer, {**good, "note": "x" * 20_000}), "body: expected at most"),
        Case("answer: invalid UTF-8", (400,), client.json("POST", answer, raw=b'{"side": "\xff\xfe"}'), "not JSON"),
        Case("answer: a JSON list", (400,), client.json("POST", answer, [1, 2]), "expected a JSON object"),
        Case("answer: an extra field", (400,), client.json("POST", answer, {**good, "note": "x"}), "expected only the fields"),
        Case("answer: 3 MB extra field", (413, 0), client.json("POST", answer, {**good, "note": "x" * BIG})),
        Case("answer: unknown session", (404,), client.json("POST", "/api/s/nobody/answer", good), "unknown session"),
        Case("session: external_id of 3 MB (JSON)", (413, 0), client.json("POST", "/session", {"external_id": "x" * BIG})),
        Case("session: external_id of 201 characters (JSON)", (400,),
             client.json("POST", "/session", {"external_id": "x" * 201}), "external_id: expected at most 200"),
        Case("session: external_id of 201 characters (form)", (400,),
             client.send("POST", "/session", b"external_id=" + b"x" * 201,
                         {"Content-Type": "application/x-www-form-urlencoded"}), "external_id: expected at most 200"),
        Case("session: external_id with a lone surrogate", (400,),
             client.json("POST", "/session", raw=b'{"external_id": "\\ud800"}'), "external_id: expected printable"),
        Case("session: external_id a number", (400,), client.json("POST", "/session", {"external_id": 5}), "expected a string"),
        Case("session: extra field", (400,), client.json("POST", "/session", {"external_id": "a", "admin": 1}), "expected only"),
        Case("start page: pid of 201 characters", (400,), client.send("GET", "/?pid=" + "x" * 201), "pid: expected at most 200"),
        Case("image: embedded null byte", (404,), client.send("GET", "/img/000/49.png%00.txt")),
        Case("image: null byte in a name", (404,), client.send("GET", "/img/1-%00.png")),
        Case("image: path traversal", (404,), client.send("GET", "/img/..%2f..%2fetc%2fpasswd")),
        Case("image: trial id past 2**63", (404,), client.send("GET", f"/img/{10**30}-{'0' * 24}.png")),
        Case("image: forged name", (404,), client.send("GET", f"/img/{trial['trial_id']}-{'0' * 24}.png")),
        Case("trial page: unknown session (HTML)", (404,), client.send("GET", "/s/nobody"), "<!doctype html>"),
        Case("trial page: null byte", (404,), client.send("GET", "/s/%00")),
        Case("request line of 40 KB", (431, 0), client.send("GET", "/s/" + "x" * 40_000)),
        Case("admin without token", (403,), client.send("GET", "/admin")),
        Case("wrong method", (405,), client.send("DELETE", "/session")),
    ]
    stored = client.json("POST", answer, good)
    cases.append(Case("answer: the good one still stored", (200,), stored))
    sessions = [client.json("POST", "/session", {}) for _ in range(MAX_SESSIONS)]
    limited = next((s for s in sessions if s.status != 201), sessions[-1])
    cases.append(Case(f"new sessions: {MAX_SESSIONS} in a row", (429,), limited, "new sessions: expected at most"))
    return cases


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    cases = probe(argv[0])
    for case in cases:
        print(f"{'ok ' if case.ok else 'BAD'} {case.reply.status:>3} (expected {'/'.join(map(str, case.expected))})  {case.name}")
    return 0 if all(case.ok for case in cases) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
