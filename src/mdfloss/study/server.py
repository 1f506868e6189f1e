"""The study's web app (Flask): sessions, trials, answers, images and an admin page.

Routes::

    GET  /                          instructions and a start button
    POST /session                   new session (form: redirect to /s/<token>; JSON: 201 {token, url})
    GET  /s/<token>                 the trial page
    GET  /api/s/<token>/next        {"done": false, "trial": {...}, "next": {...}} or {"done": true, "code"}
    POST /api/s/<token>/answer      {"trial_id", "side": "left"|"right", "rt_ms"} -> {"stored": true, ...}
    GET  /img/<path>                an image of the study's folder, at its own size
    GET  /admin?token=T             progress and golden pass rates; /admin/export.csv?token=T

Errors are JSON ``{"error": message}`` under /api (HTML elsewhere) with a 4xx status: 400 malformed
JSON, a bad field or a path leaving the image folder; 403 wrong admin token; 404 unknown session,
trial or image; 409 duplicate or stale trial id; 410 finished session.
"""

from __future__ import annotations

import csv
import hmac
import io
import threading
from pathlib import Path
from typing import Any

import numpy as np
from flask import (
    Flask,
    Response,
    abort,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
)
from werkzeug.exceptions import HTTPException
from werkzeug.security import safe_join
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .design import AsapQueue, session_planner
from .store import Store, StudyError, Trial

EXPORT_FIELDS = ("observer", "block", "condition_A", "condition_B", "is_A_selected", "rt_ms", "golden")


def export_csv(store: Store) -> str:
    """The answers as CSV text, one row per answer (:data:`EXPORT_FIELDS`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(store.answer_rows())
    return buffer.getvalue()


def _trial_json(trial: Trial) -> dict[str, Any]:
    return {"trial_id": trial.id, "position": trial.position, "total": trial.total, "width": trial.width,
            "height": trial.height, "reference": f"/img/{trial.reference}", "left": f"/img/{trial.left}",
            "right": f"/img/{trial.right}"}


def create_app(store: Store, seed: int | None = None) -> Flask:
    """The Flask app of one study. ``seed`` fixes the sessions' random choices (tests)."""
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.json.sort_keys = False
    rng = np.random.default_rng(seed)
    rng_lock = threading.Lock()
    scheduler = AsapQueue(store, seed or 0) if store.study["design"] == "asap" else None
    app.extensions["asap"] = scheduler
    admin_token = store.study["admin_token"]

    def new_session(external_id: str | None) -> str:
        with rng_lock:
            session_rng = np.random.default_rng(rng.integers(2**63))
        return store.create_session(session_planner(store, scheduler, session_rng), external_id=external_id,
                                    user_agent=request.headers.get("User-Agent", "")[:300])

    def check_admin() -> None:
        given = request.args.get("token", "")
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            abort(403, "admin: expected the admin token printed by `mdfloss study serve` (?token=...)")

    @app.errorhandler(StudyError)
    def study_error(error: StudyError) -> tuple[Response, int]:
        return jsonify(error=str(error)), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if request.path.startswith("/api/") or request.is_json:
            return jsonify(error=error.description), error.code
        return render_template("message.html", title=f"{error.code} {error.name}", message=error.description), error.code

    @app.get("/")
    def index() -> str:
        return render_template("index.html", name=store.study["name"], pid=request.args.get("pid", ""))

    @app.post("/session")
    def start() -> Any:
        if request.is_json:
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                abort(400, "body: expected a JSON object such as {\"external_id\": \"...\"}")
            external = body.get("external_id")
            if external is not None and not isinstance(external, str):
                abort(400, f"external_id: expected a string, got {type(external).__name__}")
            token = new_session(external)
            return jsonify(token=token, url=f"/s/{token}"), 201
        token = new_session(request.form.get("external_id", "")[:200] or None)
        return redirect(f"/s/{token}", code=303)

    @app.get("/s/<token>")
    def session_page(token: str) -> str:
        store.upcoming(token, 0)  # 404 for an unknown session
        return render_template("trial.html", token=token)

    @app.get("/api/s/<token>/next")
    def next_trial(token: str) -> Response:
        trials, code = store.upcoming(token, 2)
        if not trials:
            return jsonify(done=True, code=code)
        return jsonify(done=False, trial=_trial_json(trials[0]),
                       next=_trial_json(trials[1]) if len(trials) > 1 else None)

    @app.post("/api/s/<token>/answer")
    def answer(token: str) -> Response:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            abort(400, "body: expected a JSON object {\"trial_id\": int, \"side\": \"left\"|\"right\", \"rt_ms\": number}")
        code = store.submit(token, body.get("trial_id"), body.get("side"), body.get("rt_ms"))
        return jsonify(stored=True, done=code is not None, code=code)

    @app.get("/img/<path:name>")
    def image(name: str) -> Response:
        joined = safe_join(str(store.image_dir), name)
        if joined is None or not Path(joined).resolve().is_relative_to(store.image_dir):
            abort(400, f"image: the path {name!r} leaves the study's image folder")
        if not Path(joined).is_file():
            abort(404, f"image: no image {name!r} in this study")
        return send_file(joined, mimetype="image/png", max_age=3600)

    @app.get("/admin")
    def admin() -> str:
        check_admin()
        return render_template("admin.html", study=store.study, progress=store.progress(), token=admin_token)

    @app.get("/admin/export.csv")
    def export() -> Response:
        check_admin()
        return Response(export_csv(store), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=answers.csv"})

    return app


class _ErrorsOnlyHandler(WSGIRequestHandler):
    """Logs the requests that failed (4xx, 5xx), not the thousands of normal ones."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code)[:1] in ("4", "5"):
            super().log_request(code, size)


class StudyServer:
    """The app on a threaded WSGI server; ``port=0`` picks a free port (see :attr:`url`)."""

    def __init__(self, store: Store, host: str = "127.0.0.1", port: int = 8000, seed: int | None = None) -> None:
        self.app = create_app(store, seed)
        self.server: BaseWSGIServer = make_server(host, port, self.app, threaded=True,
                                                   request_handler=_ErrorsOnlyHandler)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread: threading.Thread | None = None

    def start(self) -> "StudyServer":
        """Serve in a background thread."""
        self.thread = threading.Thread(target=self.server.serve_forever, name="study-server", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.app.extensions["asap"] is not None:
            self.app.extensions["asap"].close()
        if self.thread is not None:
            self.thread.join(timeout=10)

