"""What one request to the study server may carry: body size, JSON shape, field lengths, and how
many new sessions one client address may start per minute.

Every refusal is a :class:`werkzeug.exceptions.HTTPException` (400, 413 or 429) whose description
names the field, what was expected and what arrived; the app turns it into JSON or HTML.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Any

from werkzeug.exceptions import BadRequest, TooManyRequests

MAX_BODY = 16 * 1024
"""Bytes a request body may have (Flask's MAX_CONTENT_LENGTH: 413 above). An answer is ~60 bytes."""
MAX_HEADERS = 32 * 1024
"""Bytes of request line and headers (the WSGI server answers 431 above)."""
MAX_EXTERNAL_ID = 200
"""Characters of a participant id, from a form, a JSON body or ``?pid=``."""
SESSIONS_PER_MINUTE = 20
"""Default limit of new sessions per client address and minute (429 above)."""


def json_object(data: bytes, allowed: Collection[str], example: str) -> dict[str, Any]:
    """The request body as a JSON object holding only ``allowed`` keys; 400 otherwise.

    ``example`` shows the expected body in the message. Deep nesting (RecursionError), bad UTF-8
    and numbers Python cannot read are all "not JSON".
    """
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise BadRequest(f"body: expected a JSON object such as {example}, got {len(data)} bytes that are not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest(f"body: expected a JSON object such as {example}, got a JSON {type(body).__name__}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise BadRequest(f"body: expected only the fields {', '.join(allowed)}, got also {shown}")
    return body


def external_id(value: object, field: str = "external_id") -> str | None:
    """A participant id: None for empty, else printable text of at most MAX_EXTERNAL_ID characters."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field}: expected a string, got {type(value).__name__}")
    if len(value) > MAX_EXTERNAL_ID:
        raise BadRequest(f"{field}: expected at most {MAX_EXTERNAL_ID} characters, got {len(value)}")
    if not value.isprintable() or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise BadRequest(f"{field}: expected printable text, got {value[:40]!r}")
    return value


class RateLimit:
    """At most ``limit`` events per key in any ``window`` seconds (a sliding window); 0 = no limit.

    Keys whose events have all expired are dropped, so memory stays bounded by the recent ones.
    """

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 0:
            raise ValueError(f"limit: expected 0 (no limit) or more events per window, got {limit}")
        self.limit, self.window, self.clock = limit, window, clock
        self.events: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str, what: str) -> None:
        """Count one event for ``key``, or raise 429 (with Retry-After) when the limit is reached."""
        if self.limit == 0:
            return
        with self.lock:
            now = self.clock()
            for stale in [k for k, times in self.events.items() if times[-1] <= now - self.window]:
                del self.events[stale]
            times = self.events.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                wait = max(1, int(times[0] + self.window - now + 1))
                raise TooManyRequests(f"{what}: expected at most {self.limit} per client address per "
                                      f"{self.window:g} s, got more; try again in {wait} s", retry_after=wait)
            times.append(now)
