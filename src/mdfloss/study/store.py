"""The study file: one SQLite database in WAL mode holding the design, the sessions and the answers.

Tables: ``study`` (one row: design and settings), ``block`` (one per reference image; pairs are
only compared within a block), ``condition`` (per block: the test conditions, the reference and
the heavily distorted golden copy), ``observer`` (one per session), ``trial`` (generated and
stored when a session starts, so a reload resumes; left/right as shown) and ``answer`` (keyed
by trial: an answer is stored once, a second submit changes nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .._files import existing_file

SCHEMA = """
CREATE TABLE study (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    design TEXT NOT NULL CHECK (design IN ('full', 'asap')),
    trials_per_session INTEGER NOT NULL CHECK (trials_per_session > 0),
    golden_rate REAL NOT NULL CHECK (golden_rate >= 0 AND golden_rate < 1),
    seed INTEGER NOT NULL,
    admin_token TEXT NOT NULL,
    secret TEXT NOT NULL,
    image_dir TEXT NOT NULL,
    config_json TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE block (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE condition (
    id INTEGER PRIMARY KEY,
    block_id INTEGER NOT NULL REFERENCES block(id),
    label TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('test', 'reference', 'golden')),
    image TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    UNIQUE (block_id, label)
);
CREATE TABLE observer (
    id INTEGER PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    external_id TEXT,
    user_agent TEXT,
    started TEXT NOT NULL,
    finished TEXT,
    code TEXT
);
CREATE TABLE trial (
    id INTEGER PRIMARY KEY,
    observer_id INTEGER NOT NULL REFERENCES observer(id),
    position INTEGER NOT NULL,
    block_id INTEGER NOT NULL REFERENCES block(id),
    cond_left INTEGER NOT NULL REFERENCES condition(id),
    cond_right INTEGER NOT NULL REFERENCES condition(id),
    kind TEXT NOT NULL CHECK (kind IN ('test', 'golden')),
    expected_side TEXT CHECK (expected_side IN ('left', 'right')),
    UNIQUE (observer_id, position)
);
CREATE TABLE answer (
    trial_id INTEGER PRIMARY KEY REFERENCES trial(id),
    side TEXT NOT NULL CHECK (side IN ('left', 'right')),
    rt_ms REAL NOT NULL,
    answered_at TEXT NOT NULL
);
CREATE INDEX trial_block ON trial(block_id);
"""

SIDES = ("left", "right")
SLOTS = ("reference", "left", "right")
"""The three images of a trial."""
MAX_ID = 2**63 - 1
"""SQLite's largest integer: a larger trial id cannot name a trial."""


class StudyError(ValueError):
    """A request the study cannot honour; ``status`` is the HTTP status the server answers with."""

    status = 400


class UnknownSession(StudyError):
    status = 404


class UnknownTrial(StudyError):
    status = 404


class SessionFinished(StudyError):
    status = 410


class DuplicateAnswer(StudyError):
    status = 409


class StaleTrial(StudyError):
    status = 409


@dataclass(frozen=True)
class ConditionSpec:
    label: str
    role: str
    image: str
    """Path relative to the study's image folder."""
    width: int
    height: int


@dataclass(frozen=True)
class BlockSpec:
    name: str
    conditions: Sequence[ConditionSpec]


@dataclass(frozen=True)
class TrialSpec:
    block_id: int
    left: int
    right: int
    kind: str
    expected_side: str | None = None


@dataclass(frozen=True)
class Trial:
    id: int
    position: int
    total: int
    block: str
    kind: str
    reference: str
    left: str
    right: str
    width: int
    height: int


def _shown(value: object) -> str:
    """``value`` for a message: at most 40 characters, a huge integer by its size."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)[:40]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def create_study(path: str | os.PathLike[str], *, name: str, design: str, trials_per_session: int,
                 golden_rate: float, seed: int, image_dir: str, blocks: Sequence[BlockSpec],
                 config: dict[str, Any], admin_token: str | None = None) -> Path:
    """Write a new study file (built under a temporary name, then renamed: never half a study).

    ``image_dir`` is relative to the file's folder. Raises FileExistsError when ``path`` exists.
    """
    target = Path(path)
    if target.exists():
        raise FileExistsError(f"--out: expected a new study file, got {target} (it exists; remove it or pick another name)")
    if design not in ("full", "asap"):
        raise ValueError(f"design: expected 'full' or 'asap', got {design!r}")
    if not blocks:
        raise ValueError("blocks: expected at least one image to compare, got none")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        connection = sqlite3.connect(temporary)
        with connection:
            connection.executescript(SCHEMA)
            connection.execute(
                "INSERT INTO study VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, design, trials_per_session, golden_rate, seed, admin_token or secrets.token_urlsafe(16),
                 secrets.token_hex(16), image_dir, json.dumps(config, sort_keys=True), now()))
            for block in blocks:
                block_id = connection.execute("INSERT INTO block (name) VALUES (?)", (block.name,)).lastrowid
                connection.executemany(
                    "INSERT INTO condition (block_id, label, role, image, width, height) VALUES (?, ?, ?, ?, ?, ?)",
                    [(block_id, c.label, c.role, c.image, c.width, c.height) for c in block.conditions])
        connection.execute("PRAGMA journal_mode=WAL")
        connection.close()
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


class Store:
    """A study file opened for reading and writing; one SQLite connection per thread."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = existing_file(path, "study", "a study file made by `mdfloss study create`")
        self._local = threading.local()
        try:
            row = self.connection().execute("SELECT * FROM study").fetchone()
        except sqlite3.DatabaseError as error:
            raise ValueError(f"study: expected a study file made by `mdfloss study create`, got {self.path} ({error})") from error
        if row is None:
            raise ValueError(f"study: {self.path} holds no study")
        self.study = dict(row)
        self.config = json.loads(self.study.pop("config_json"))
        self.image_dir = (self.path.parent / self.study["image_dir"]).resolve()

    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=60000")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: writers take turns, readers never block."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    # -- design -------------------------------------------------------------------------------

    def blocks(self) -> list[dict[str, Any]]:
        """Every block with its conditions by role: ``{"id", "name", "test": [...], "reference", "golden"}``."""
        rows = self.connection().execute(
            "SELECT b.id AS block_id, b.name, c.* FROM block b JOIN condition c ON c.block_id = b.id ORDER BY b.id, c.id")
        blocks: dict[int, dict[str, Any]] = {}
        for row in rows:
            block = blocks.setdefault(row["block_id"], {"id": row["block_id"], "name": row["name"], "test": []})
            item = {"id": row["id"], "label": row["label"], "image": row["image"]}
            if row["role"] == "test":
                block["test"].append(item)
            else:
                block[row["role"]] = item
        return list(blocks.values())

    def pair_counts(self, connection: sqlite3.Connection | None = None) -> dict[tuple[int, int, int], int]:
        """How many sessions were given each test pair: ``{(block, low id, high id): count}``."""
        connection = connection or self.connection()
        rows = connection.execute(
            "SELECT block_id, MIN(cond_left, cond_right), MAX(cond_left, cond_right), COUNT(*) FROM trial "
            "WHERE kind = 'test' GROUP BY 1, 2, 3")
        return {(b, lo, hi): n for b, lo, hi, n in rows}

    def wins(self, block_id: int) -> dict[tuple[int, int], int]:
        """Answered test trials of one block: ``{(winner id, loser id): count}``."""
        rows = self.connection().execute(
            "SELECT CASE a.side WHEN 'left' THEN t.cond_left ELSE t.cond_right END, "
            "CASE a.side WHEN 'left' THEN t.cond_right ELSE t.cond_left END, COUNT(*) "
            "FROM trial t JOIN answer a ON a.trial_id = t.id WHERE t.block_id = ? AND t.kind = 'test' GROUP BY 1, 2",
            (block_id,))
        return {(w, lo): n for w, lo, n in rows}

    # -- sessions ------------------------------------------------------------------------------

    def create_session(self, plan: Callable[[sqlite3.Connection], Sequence[TrialSpec]], *,
                       external_id: str | None = None, user_agent: str | None = None) -> str:
        """A new observer with the trials ``plan`` chooses (inside the write lock, so concurrent
        sessions see each other's pairs); returns the session token."""
        token = secrets.token_urlsafe(18)
        with self.transaction() as connection:
            trials = plan(connection)
            if not trials:
                raise ValueError("plan: expected at least one trial for the session, got none")
            observer = connection.execute(
                "INSERT INTO observer (token, external_id, user_agent, started) VALUES (?, ?, ?, ?)",
                (token, external_id, user_agent, now())).lastrowid
            connection.executemany(
                "INSERT INTO trial (observer_id, position, block_id, cond_left, cond_right, kind, expected_side) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(observer, n, t.block_id, t.left, t.right, t.kind, t.expected_side) for n, t in enumerate(trials)])
        return token

    def _observer(self, connection: sqlite3.Connection, token: object) -> sqlite3.Row:
        if not isinstance(token, str):
            raise UnknownSession(f"session: expected a session token, got {type(token).__name__}")
        row = connection.execute("SELECT * FROM observer WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise UnknownSession("session: unknown session token (start a new session from the study's first page)")
        return row

    def session(self, token: str) -> dict[str, Any] | None:
        """The observer row of a session (``external_id``, ``finished``, ``code``...), or None."""
        row = self.connection().execute("SELECT * FROM observer WHERE token = ?", (token,)).fetchone()
        return None if row is None else dict(row)

    def completion_code(self, token: str) -> str:
        digest = hmac.new(self.study["secret"].encode(), token.encode(), hashlib.sha256).hexdigest().upper()
        return f"{digest[:4]}-{digest[4:8]}"

    def image_name(self, trial_id: int, slot: str) -> str:
        """The opaque name a trial's image is served under (``slot``: reference, left or right).

        A keyed hash of trial and slot: every image of every trial has its own name, so a name
        tells neither the condition nor whether a side is the reference itself.
        """
        mac = hmac.new(self.study["secret"].encode(), f"image:{trial_id}:{slot}".encode(), hashlib.sha256).hexdigest()
        return f"{trial_id}-{mac[:24]}.png"

    def image_file(self, name: str) -> Path | None:
        """The study image served under ``name`` (see :meth:`image_name`), or None."""
        match = re.fullmatch(r"([1-9][0-9]{0,18})-[0-9a-f]{24}\.png", name)
        if match is None or int(match[1]) > MAX_ID:
            return None
        trial_id = int(match[1])
        slot = next((s for s in SLOTS if hmac.compare_digest(self.image_name(trial_id, s), name)), None)
        if slot is None:
            return None
        row = self.connection().execute(
            "SELECT ref.image AS reference, l.image AS left, r.image AS right FROM trial t "
            "JOIN condition l ON l.id = t.cond_left JOIN condition r ON r.id = t.cond_right "
            "JOIN condition ref ON ref.block_id = t.block_id AND ref.role = 'reference' WHERE t.id = ?",
            (trial_id,)).fetchone()
        return None if row is None else self.image_dir / row[slot]

    def upcoming(self, token: str, count: int = 2) -> tuple[list[Trial], str | None]:
        """The next ``count`` unanswered trials of a session, and its completion code once it is done."""
        connection = self.connection()
        observer = self._observer(connection, token)
        total = connection.execute("SELECT COUNT(*) FROM trial WHERE observer_id = ?", (observer["id"],)).fetchone()[0]
        rows = connection.execute(
            "SELECT t.id, t.position, t.kind, b.name AS block, l.image AS left_image, r.image AS right_image, "
            "ref.image AS reference, ref.width, ref.height FROM trial t "
            "JOIN block b ON b.id = t.block_id "
            "JOIN condition l ON l.id = t.cond_left JOIN condition r ON r.id = t.cond_right "
            "JOIN condition ref ON ref.block_id = t.block_id AND ref.role = 'reference' "
            "WHERE t.observer_id = ? AND NOT EXISTS (SELECT 1 FROM answer a WHERE a.trial_id = t.id) "
            "ORDER BY t.position LIMIT ?", (observer["id"], count)).fetchall()
        trials = [Trial(r["id"], r["position"], total, r["block"], r["kind"], r["reference"], r["left_image"],
                        r["right_image"], r["width"], r["height"]) for r in rows]
        return trials, observer["code"]

    def submit(self, token: object, trial_id: object, side: object, rt_ms: object) -> str | None:
        """Store one answer; the completion code when it was the session's last, else None.

        Raises :class:`UnknownSession`, :class:`SessionFinished`, :class:`UnknownTrial` (not this
        session's), :class:`DuplicateAnswer` (already answered: the stored answer stays),
        :class:`StaleTrial` (not the trial being shown) or :class:`StudyError` for bad values.
        """
        if isinstance(trial_id, bool) or not isinstance(trial_id, int) or not 0 < trial_id <= MAX_ID:
            raise StudyError(f"trial_id: expected an integer from 1 to 2**63-1, got {_shown(trial_id)}")
        if side not in SIDES:
            raise StudyError(f"side: expected 'left' or 'right', got {_shown(side)}")
        if isinstance(rt_ms, bool) or not isinstance(rt_ms, (int, float)) or not 0 <= rt_ms < 86_400_000:
            raise StudyError(f"rt_ms: expected a response time in milliseconds (0 to 1 day), got {_shown(rt_ms)}")
        with self.transaction() as connection:
            observer = self._observer(connection, token)
            if observer["finished"] is not None:
                raise SessionFinished("session: already finished; its answers are stored and it takes no more")
            trial = connection.execute("SELECT id, position FROM trial WHERE id = ? AND observer_id = ?",
                                       (trial_id, observer["id"])).fetchone()
            if trial is None:
                raise UnknownTrial(f"trial_id: {trial_id} is not a trial of this session")
            if connection.execute("SELECT 1 FROM answer WHERE trial_id = ?", (trial_id,)).fetchone():
                raise DuplicateAnswer(f"trial_id: {trial_id} was already answered; the first answer is kept")
            current = connection.execute(
                "SELECT MIN(position) FROM trial t WHERE observer_id = ? "
                "AND NOT EXISTS (SELECT 1 FROM answer a WHERE a.trial_id = t.id)", (observer["id"],)).fetchone()[0]
            if trial["position"] != current:
                raise StaleTrial(f"trial_id: {trial_id} is not the trial being shown (position {trial['position']}, "
                                 f"expected {current}); reload the page")
            connection.execute("INSERT INTO answer VALUES (?, ?, ?, ?)", (trial_id, side, float(rt_ms), now()))
            remaining = connection.execute(
                "SELECT COUNT(*) FROM trial t WHERE observer_id = ? "
                "AND NOT EXISTS (SELECT 1 FROM answer a WHERE a.trial_id = t.id)", (observer["id"],)).fetchone()[0]
            if remaining:
                return None
            code = self.completion_code(observer["token"])
            connection.execute("UPDATE observer SET finished = ?, code = ? WHERE id = ?", (now(), code, observer["id"]))
            return code

    # -- results -------------------------------------------------------------------------------

    def answer_rows(self) -> list[dict[str, Any]]:
        """One row per answer (pwcmp's columns plus ``rt_ms`` and ``golden``), in answer order.

        Test trials: ``condition_A`` is the condition shown on the left. Golden trials:
        ``condition_A`` is ``reference`` and ``is_A_selected`` says whether the observer found it.
        """
        rows = self.connection().execute(
            "SELECT o.id AS observer, b.name AS block, l.label AS left_label, r.label AS right_label, t.kind, "
            "t.expected_side, a.side, a.rt_ms FROM answer a JOIN trial t ON t.id = a.trial_id "
            "JOIN observer o ON o.id = t.observer_id JOIN block b ON b.id = t.block_id "
            "JOIN condition l ON l.id = t.cond_left JOIN condition r ON r.id = t.cond_right ORDER BY a.rowid")
        out = []
        for row in rows:
            golden = row["kind"] == "golden"
            if golden:
                a_label, b_label = "reference", "distorted"
                a_selected = row["side"] == row["expected_side"]
            else:
                a_label, b_label, a_selected = row["left_label"], row["right_label"], row["side"] == "left"
            out.append({"observer": f"o{row['observer']}", "block": row["block"], "condition_A": a_label,
                        "condition_B": b_label, "is_A_selected": int(a_selected), "rt_ms": round(row["rt_ms"]),
                        "golden": int(golden)})
        return out

    def progress(self) -> dict[str, Any]:
        """Sessions, answers, golden pass rates and how often the test pairs were given (all
        ``pairs``, ``pairs_never`` given, from ``pairs_min`` to ``pairs_max`` times), for the admin page."""
        connection = self.connection()
        observers = [dict(r) for r in connection.execute(
            "SELECT o.token, o.external_id, o.started, o.finished, o.code, "
            "(SELECT COUNT(*) FROM trial t WHERE t.observer_id = o.id) AS trials, "
            "(SELECT COUNT(*) FROM trial t JOIN answer a ON a.trial_id = t.id WHERE t.observer_id = o.id) AS answered, "
            "(SELECT COUNT(*) FROM trial t JOIN answer a ON a.trial_id = t.id "
            " WHERE t.observer_id = o.id AND t.kind = 'golden') AS golden, "
            "(SELECT COUNT(*) FROM trial t JOIN answer a ON a.trial_id = t.id "
            " WHERE t.observer_id = o.id AND t.kind = 'golden' AND a.side = t.expected_side) AS golden_passed, "
            "(SELECT AVG(a.rt_ms) FROM trial t JOIN answer a ON a.trial_id = t.id WHERE t.observer_id = o.id) AS mean_rt "
            "FROM observer o ORDER BY o.id")]
        answers = connection.execute("SELECT COUNT(*) FROM answer").fetchone()[0]
        given = self.pair_counts()
        pairs = sum(len(b["test"]) * (len(b["test"]) - 1) // 2 for b in self.blocks())
        return {"observers": observers, "answers": answers,
                "finished": sum(o["finished"] is not None for o in observers),
                "pairs": pairs, "pairs_never": pairs - len(given),
                "pairs_min": min(given.values(), default=0) if len(given) == pairs else 0,
                "pairs_max": max(given.values(), default=0)}
