"""The study's web app (Flask): sessions, trials, answers, images and an admin page.

Routes::

    GET  /                          instructions and a start button (a session in progress resumes)
    POST /session                   new session (form: redirect to /s/<token>; JSON: 201 {token, url})
    GET  /s/<token>                 the trial page, with the link that resumes it
    GET  /api/s/<token>/next        {"done": false, "trial": {...}, "next": {...}} or {"done": true, "code"}
    POST /api/s/<token>/answer      {"trial_id", "side": "left"|"right", "rt_ms"} -> {"stored": true, ...}
    GET  /img/<name>                a trial's image under its opaque name (:meth:`Store.image_name`)
    GET  /admin?token=T             progress and golden pass rates; /admin/export.csv?token=T

A browser keeps its session in a cookie: a return to ``/`` (Back, a bookmark, a closed tab) or a
second Start resumes the unfinished session instead of starting another.

Errors are JSON ``{"error": message}`` under /api and for JSON requests, an HTML page elsewhere,
always 4xx: 400 malformed JSON or a bad field; 403 wrong admin token; 404 unknown session, trial
or image; 409 duplicate or stale trial id; 410 finished session; 413 a body over
:data:`bounds.MAX_BODY`; 429 too many new sessions from one address (:mod:`.bounds`).
"""

from __future__ import annotations

import csv
import hmac
import io
import threading
from typing import Any

import numpy as np
from flask import (
    Flask,
    Response,
    abort,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
)
from werkzeug.exceptions import HTTPException

from . import bounds
from .design import AsapQueue, session_minutes, session_planner, session_trials
from .store import SLOTS, Store, StudyError, Trial

EXPORT_FIELDS = ("observer", "block", "condition_A", "condition_B", "is_A_selected", "rt_ms", "golden")
COOKIE = "mdfloss_study"
"""The cookie that holds a browser's session token."""
COOKIE_DAYS = 30
ANSWER_EXAMPLE = '{"trial_id": 12, "side": "left", "rt_ms": 850}'


def export_csv(store: Store) -> str:
    """The answers as CSV text, one row per answer (:data:`EXPORT_FIELDS`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(store.answer_rows())
    return buffer.getvalue()


def _trial_json(store: Store, trial: Trial) -> dict[str, Any]:
    urls = {slot: f"/img/{store.image_name(trial.id, slot)}" for slot in SLOTS}
    return {"trial_id": trial.id, "position": trial.position, "total": trial.total, "width": trial.width,
            "height": trial.height, **urls}


def create_app(store: Store, seed: int | None = None, sessions_per_minute: int = bounds.SESSIONS_PER_MINUTE) -> Flask:
    """The Flask app of one study. ``seed`` fixes the sessions' random choices (tests);
    ``sessions_per_minute`` limits new sessions per client address (0: no limit)."""
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = bounds.MAX_BODY
    app.config["MAX_FORM_MEMORY_SIZE"] = bounds.MAX_BODY
    rng = np.random.default_rng(seed)
    rng_lock = threading.Lock()
    scheduler = AsapQueue(store, seed or 0) if store.study["design"] == "asap" else None
    app.extensions["asap"] = scheduler
    admin_token = store.study["admin_token"]
    new_sessions = bounds.RateLimit(sessions_per_minute)

    def new_session(external_id: str | None) -> str:
        new_sessions.take(request.remote_addr or "", "new sessions")
        with rng_lock:
            session_rng = np.random.default_rng(rng.integers(2**63))
        return store.create_session(session_planner(store, scheduler, session_rng), external_id=external_id,
                                    user_agent=request.headers.get("User-Agent", "")[:300])

    def resumable(external_id: str | None) -> str | None:
        """The browser's unfinished session (from its cookie), if it belongs to ``external_id``."""
        token = request.cookies.get(COOKIE, "")
        session = store.session(token) if token else None
        if session is None or session["finished"] is not None:
            return None
        if external_id is not None and external_id != session["external_id"]:
            return None
        return token

    def check_admin() -> None:
        given = request.args.get("token", "")
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            abort(403, "admin: expected the admin token printed by `mdfloss study serve` (?token=...)")

    def refusal(status: int, title: str, message: str) -> Response:
        if request.path.startswith("/api/") or request.is_json:
            response = jsonify(error=message)
        else:
            response = make_response(render_template("message.html", title=f"{status} {title}", message=message))
        response.status_code = status
        return response

    @app.errorhandler(StudyError)
    def study_error(error: StudyError) -> Response:
        return refusal(error.status, "Not possible", str(error))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        message = error.description or error.name
        if error.code == 413:
            message = f"body: expected at most {bounds.MAX_BODY} bytes, got {request.content_length or 'more'}"
        response = refusal(error.code or 400, error.name, message)
        for name, value in error.get_headers():
            if name in ("Retry-After", "Allow"):
                response.headers[name] = value
        return response

    @app.after_request
    def log_refusals(response: Response) -> Response:
        if response.status_code >= 400 and response.status_code not in (409, 410):  # 409/410: a double click
            app.logger.warning("%s %s %s -> %d", request.remote_addr, request.method, request.path[:200],
                               response.status_code)
        return response

    @app.get("/")
    def index() -> Any:
        pid = bounds.external_id(request.args.get("pid"), "pid")
        token = resumable(pid)
        if token is not None:
            return redirect(f"/s/{token}", code=303)
        tests, rate = store.study["trials_per_session"], store.study["golden_rate"]
        response = make_response(render_template("index.html", name=store.study["name"], pid=pid or "",
                                                 trials=session_trials(tests, rate),
                                                 minutes=session_minutes(tests, rate)))
        response.headers["Cache-Control"] = "no-store"  # Back must ask again, so that it resumes
        return response

    @app.post("/session")
    def start() -> Any:
        if request.is_json:
            body = bounds.json_object(request.get_data(), ("external_id",), '{"external_id": "P-17"}')
            token = new_session(bounds.external_id(body.get("external_id")))
            return jsonify(token=token, url=f"/s/{token}"), 201
        external = bounds.external_id(request.form.get("external_id"))
        token = resumable(external) or new_session(external)
        return redirect(f"/s/{token}", code=303)

    @app.get("/s/<token>")
    def session_page(token: str) -> Response:
        session = store.session(token)
        if session is None:
            abort(404, "session: unknown session link; start a new session from the study's first page")
        response = make_response(render_template("trial.html", token=token, code=session["code"],
                                                 resume_url=f"{request.host_url}s/{token}"))
        response.headers["Cache-Control"] = "no-store"
        if session["finished"] is None:
            response.set_cookie(COOKIE, token, max_age=COOKIE_DAYS * 86400, httponly=True, samesite="Lax",
                                secure=request.is_secure)
        return response

    @app.get("/api/s/<token>/next")
    def next_trial(token: str) -> Response:
        trials, code = store.upcoming(token, 2)
        if not trials:
            return jsonify(done=True, code=code)
        return jsonify(done=False, trial=_trial_json(store, trials[0]),
                       next=_trial_json(store, trials[1]) if len(trials) > 1 else None)

    @app.post("/api/s/<token>/answer")
    def answer(token: str) -> Response:
        body = bounds.json_object(request.get_data(), ("trial_id", "side", "rt_ms"), ANSWER_EXAMPLE)
        code = store.submit(token, body.get("trial_id"), body.get("side"), body.get("rt_ms"))
        return jsonify(stored=True, done=code is not None, code=code)

    @app.get("/img/<name>")
    def image(name: str) -> Response:
        path = store.image_file(name)
        if path is None:
            abort(404, "image: no image of this name in this study (names come from /api/s/<token>/next)")
        return send_file(path, mimetype="image/png", max_age=3600)

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
