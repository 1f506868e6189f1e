"""The study file: schema, sessions, the full design's balance, answers stored exactly once."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter

import numpy as np
import pytest
from study_fixtures import make_study

from mdfloss.study.design import arrange, full_design, golden_count, session_planner
from mdfloss.study.store import (
    DuplicateAnswer,
    SessionFinished,
    StaleTrial,
    Store,
    StudyError,
    UnknownSession,
    UnknownTrial,
)


@pytest.fixture
def store(tmp_path):
    return Store(make_study(tmp_path, trials=6))


def new_session(store, seed=0):
    return store.create_session(session_planner(store, None, np.random.default_rng(seed)))


def test_study_file_is_in_wal_mode_with_blocks_and_roles(store):
    assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    blocks = store.blocks()
    assert len(blocks) == 2
    assert all({c["label"] for c in b["test"]} == {"l1", "l2", "mdf"} for b in blocks)
    assert all(b["reference"]["label"] == "reference" and b["golden"]["label"] == "distorted" for b in blocks)


def test_session_has_test_and_golden_trials_stored_before_they_are_shown(store):
    token = new_session(store)
    trials, code = store.upcoming(token, 100)
    assert code is None and len(trials) == 6 + golden_count(6, 0.1)
    kinds = Counter(t.kind for t in trials)
    assert kinds == {"test": 6, "golden": 1}
    assert all(t.block != u.block for t, u in zip(trials, trials[1:]))  # no image twice in a row


def test_double_submit_is_stored_once(store):
    token = new_session(store)
    trial = store.upcoming(token, 1)[0][0]
    store.submit(token, trial.id, "left", 812.5)
    with pytest.raises(DuplicateAnswer, match="first answer is kept"):
        store.submit(token, trial.id, "right", 900)
    rows = sqlite3.connect(store.path).execute("SELECT side, rt_ms FROM answer WHERE trial_id = ?", (trial.id,)).fetchall()
    assert rows == [("left", 812.5)]


def test_stale_unknown_and_finished_are_refused(store):
    token, other = new_session(store, 0), new_session(store, 1)
    trials = store.upcoming(token, 100)[0]
    with pytest.raises(StaleTrial, match="not the trial being shown"):
        store.submit(token, trials[1].id, "left", 10)
    with pytest.raises(UnknownTrial):
        store.submit(other, trials[0].id, "left", 10)
    with pytest.raises(UnknownSession):
        store.submit("no-such-token", trials[0].id, "left", 10)
    for trial in trials[:-1]:
        assert store.submit(token, trial.id, "left", 10) is None
    code = store.submit(token, trials[-1].id, "right", 10)
    assert code == store.completion_code(token) and store.upcoming(token)[1] == code
    with pytest.raises(SessionFinished):
        store.submit(token, trials[-1].id, "right", 10)


@pytest.mark.parametrize(("trial_id", "side", "rt", "message"), [
    ("1", "left", 1, "trial_id: expected an integer"),
    (True, "left", 1, "trial_id: expected an integer"),
    (1, "up", 1, "side: expected 'left' or 'right'"),
    (1, "left", -5, "rt_ms: expected a response time"),
    (1, "left", "fast", "rt_ms: expected a response time"),
])
def test_bad_values_are_refused_before_touching_the_store(store, trial_id, side, rt, message):
    with pytest.raises(StudyError, match=message):
        store.submit(new_session(store), trial_id, side, rt)


def test_concurrent_submits_from_threads_lose_and_duplicate_nothing(store):
    tokens = [new_session(store, seed) for seed in range(8)]
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def observer(token):
        local = Store(store.path)
        while True:
            trials, code = local.upcoming(token, 1)
            if not trials:
                return
            for _ in range(3):  # every answer sent three times, as by an impatient double-clicker
                try:
                    local.submit(token, trials[0].id, "left", 100)
                    result = "stored"
                except (DuplicateAnswer, SessionFinished):  # the last trial's repeats find the session finished
                    result = "duplicate"
                with lock:
                    outcomes[result] += 1

    threads = [threading.Thread(target=observer, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    connection = sqlite3.connect(store.path)
    trials = connection.execute("SELECT COUNT(*) FROM trial").fetchone()[0]
    answers = connection.execute("SELECT COUNT(*), COUNT(DISTINCT trial_id) FROM answer").fetchone()
    assert answers == (trials, trials)
    assert outcomes == {"stored": trials, "duplicate": 2 * trials}
    assert connection.execute("SELECT COUNT(*) FROM observer WHERE finished IS NULL").fetchone()[0] == 0


def test_full_design_hands_out_every_pair_equally_often(store):
    for seed in range(7):
        new_session(store, seed)
    counts = store.pair_counts().values()
    assert len(counts) == 6 and max(counts) - min(counts) <= 1  # 2 images x 3 pairs, 42 trials


def test_full_design_and_arrange_on_their_own():
    blocks = [{"id": 1, "test": [{"id": 10}, {"id": 11}, {"id": 12}], "reference": {"id": 13}, "golden": {"id": 14}}]
    rng = np.random.default_rng(0)
    pairs = full_design(blocks, {}, 90, rng)
    assert Counter(pairs) == {(1, 10, 11): 30, (1, 10, 12): 30, (1, 11, 12): 30}
    trials = arrange(pairs, blocks, 0.1, rng)
    sides = Counter((t.left, t.right) for t in trials if t.kind == "test")
    assert len(sides) == 6 and min(sides.values()) >= 5  # both orders of every pair, at random
    golden = [t for t in trials if t.kind == "golden"]
    assert len(golden) == 10 and all({g.left, g.right} == {13, 14} for g in golden)
    assert all((g.left == 13) == (g.expected_side == "left") for g in golden)
    with pytest.raises(ValueError, match="2 or more conditions"):
        full_design([{"id": 1, "test": [{"id": 1}]}], {}, 3, rng)


def test_opening_something_that_is_not_a_study_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        Store(tmp_path / "missing.sqlite")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="expected a study file"):
        Store(tmp_path / "notes.txt")
