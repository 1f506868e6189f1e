"""The study app on a production WSGI server (waitress: threads, pure Python, no build step).

Waitress reads a whole request before a worker thread sees it, so slow or stalled clients hold
no thread; it refuses request lines and headers over :data:`bounds.MAX_HEADERS` (431) and bodies
over :data:`OUTER_BODY` (413) before the app runs; the app itself refuses, with its own message,
bodies over :data:`bounds.MAX_BODY`. Behind a reverse proxy, ``trusted_proxy``
is the proxy's address: its ``X-Forwarded-For`` and ``X-Forwarded-Proto`` then give the client's
address (for the per-address session limit) and scheme (secure cookies, the resume link).
"""

from __future__ import annotations

import errno
import logging
import threading

from waitress import wasyncore
from waitress.server import create_server

from . import bounds
from .server import create_app
from .store import Store

THREADS = 8
"""Worker threads; answers are written one at a time by SQLite anyway."""
CONNECTIONS = 500
"""Open connections (waitress's default, 100, counts its own two sockets; a browser keeps up to
six idle ones for a while): past it, new clients wait. poll() instead of select(), which stops at
1024 file descriptors."""
OUTER_BODY = 4 * bounds.MAX_BODY
"""Bodies the server reads at all (the app's limit, with room for its clear 413 message)."""


class StudyServer:
    """The study's app served by waitress; ``port=0`` picks a free port (see :attr:`url`).

    Raises ValueError naming ``--port`` or ``--host`` when the address cannot be listened on.
    """

    def __init__(self, store: Store, host: str = "127.0.0.1", port: int = 8000, seed: int | None = None,
                 sessions_per_minute: int = bounds.SESSIONS_PER_MINUTE, trusted_proxy: str | None = None) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"--port: expected a port from 1 to 65535 (0: any free one), got {port}")
        self.app = create_app(store, seed, sessions_per_minute)
        proxy = {"trusted_proxy": trusted_proxy, "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
                 "trusted_proxy_count": 1} if trusted_proxy else {}
        try:
            self.server = create_server(self.app, host=host, port=port, threads=THREADS, ident="mdfloss-study",
                                        connection_limit=CONNECTIONS, asyncore_use_poll=True,
                                        max_request_body_size=OUTER_BODY,
                                        max_request_header_size=bounds.MAX_HEADERS, **proxy)
        except OSError as error:
            if self.app.extensions["asap"] is not None:
                self.app.extensions["asap"].close()
            if error.errno == errno.EADDRINUSE:
                raise ValueError(f"--port: expected a free port, got {port} (in use on {host}; "
                                 "is the study already running?)") from None
            raise ValueError(f"--host: expected an address of this machine to listen on, got {host} ({error})") from None
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N" at every busy moment
        self.url = f"http://{host}:{self.server.effective_port}"
        self.thread: threading.Thread | None = None

    def start(self) -> "StudyServer":
        """Serve in a background thread."""
        self.thread = threading.Thread(target=self.server.run, name="study-server", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.run()

    def stop(self) -> None:
        """Close the listening socket and every connection (in the server's own loop), then the workers."""
        if self.thread is not None:
            self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
            self.thread.join(timeout=10)
        else:
            wasyncore.close_all(self.server._map)
        self.server.task_dispatcher.shutdown()
        if self.app.extensions["asap"] is not None:
            self.app.extensions["asap"].close()
