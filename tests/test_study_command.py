"""`mdfloss study create/export/scale` from the command line: bench and folder inputs, outputs,
and user mistakes reported as one line with exit code 2."""

from __future__ import annotations

import csv
import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from study_fixtures import fake_bench, fake_folders, make_study

from mdfloss.cli import main
from mdfloss.study import simulate
from mdfloss.study.bench_psnr import mean_psnr
from mdfloss.study.store import Store


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_create_from_a_bench_output_folder_crops_and_picks_images(tmp_path, capsys):
    bench = fake_bench(tmp_path / "bench", images=4, size=80)
    out = tmp_path / "s" / "study.sqlite"
    assert main(["study", "create", "--results", str(bench), "--task", "denoise", "--losses", "mdf,l2",
                 "--images", "2", "--crop", "48", "--out", str(out)]) == 0
    assert "2 images x 2 conditions (l2, mdf)" in capsys.readouterr().out
    store = Store(out)
    blocks = store.blocks()
    assert [len(b["test"]) for b in blocks] == [2, 2] and all(b["name"].startswith("val/sigma25/img") for b in blocks)
    sizes = sqlite3.connect(out).execute("SELECT DISTINCT width, height FROM condition").fetchall()
    assert sizes == [(48, 48)]
    assert store.config["source"]["experiment"] == "denoise-dncnn"
    names = {p.name for p in (tmp_path / "s" / "study-images" / "000").iterdir()}
    assert len(names) == 4 and not any(label in n for n in names for label in ("mdf", "l2", "ref"))


def test_create_from_the_folder_layout(tmp_path):
    root = fake_folders(tmp_path / "layout", images=3)
    assert main(["study", "create", "--results", str(root), "--design", "asap", "--out", str(tmp_path / "a.sqlite")]) == 0
    store = Store(tmp_path / "a.sqlite")
    assert store.study["design"] == "asap" and len(store.blocks()) == 3


def test_the_committed_gan_study_folder_is_a_study_of_every_test_image(tmp_path, capsys):
    """docs/results/gan/study: each condition holds an output for every reference crop."""
    root = Path(__file__).resolve().parents[1] / "docs" / "results" / "gan" / "study"
    references = sorted(p.name for p in (root / "ref").glob("*.png"))
    conditions = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "ref")
    assert len(references) == 13 and "mdf" in conditions and "l1" in conditions
    for condition in conditions:
        assert sorted(p.name for p in (root / condition).glob("*.png")) == references, condition
    assert main(["study", "create", "--results", str(root), "--out", str(tmp_path / "gan.sqlite")]) == 0
    assert f"13 images x {len(conditions)} conditions" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--losses", "l1,vgg"], "--losses: expected labels among ['l1', 'l2', 'mdf'], got unknown ['vgg']"),
    (["--losses", "l1"], "--losses: expected at least 2 conditions"),
    (["--task", "sisr"], "--results: expected exactly one experiment"),
    (["--dataset", "BSD/x2"], "--dataset: expected one of ['val/sigma25']"),
    (["--images", "0"], "--images: expected a positive number"),
    (["--golden-rate", "0.7"], "--golden-rate: expected a fraction"),
    (["--trials", "0"], "--trials: expected a positive number"),
])
def test_create_mistakes_are_one_line_and_exit_code_2(tmp_path, capsys, extra, message):
    bench = fake_bench(tmp_path / "bench", images=1, size=24)
    code = main(["study", "create", "--results", str(bench), "--out", str(tmp_path / "x.sqlite"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mdfloss study: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.sqlite").exists() and not (tmp_path / "x-images").exists()


def test_create_says_when_it_has_fewer_images_than_asked(tmp_path, capsys):
    root = fake_folders(tmp_path / "layout", images=3)
    assert main(["study", "create", "--results", str(root), "--images", "100", "--out", str(tmp_path / "s.sqlite")]) == 0
    printed = capsys.readouterr().out
    assert "note: --images 100 asked for more images than the 3 that every condition has; using all 3" in printed
    assert "3 images x 3 conditions" in printed


def test_create_states_the_session_length_and_refuses_absurd_ones(tmp_path, capsys):
    root = fake_folders(tmp_path / "layout", images=1)
    assert main(["study", "create", "--results", str(root), "--trials", "200", "--out", str(tmp_path / "a.sqlite")]) == 0
    printed = capsys.readouterr().out
    assert "200 comparisons per session (222 trials with the golden ones, about 30 min at 8 s each)" in printed
    assert "note: sessions of about 30 minutes are long" in printed
    assert main(["study", "create", "--results", str(root), "--trials", "1000", "--out", str(tmp_path / "b.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "--trials: expected sessions of at most 60 minutes, got 1000 comparisons (1111 trials" in err
    assert err.count("\n") == 1 and not (tmp_path / "b.sqlite").exists()


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_refuses_a_port_out_of_range(tmp_path, capsys, port):
    assert main(["study", "serve", str(make_study(tmp_path)), "--port", port]) == 2
    err = capsys.readouterr().err
    assert err == f"mdfloss study: error: --port: expected a port from 1 to 65535 (0: any free one), got {port}\n"


def test_serve_on_an_occupied_port_is_one_line_and_exit_code_2(tmp_path, capsys):
    study = make_study(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["study", "serve", str(study), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == f"mdfloss study: error: --port: expected a free port, got {port} (in use on 127.0.0.1; is the study already running?)\n"


def test_create_refuses_to_overwrite_and_missing_input(tmp_path, capsys):
    study = make_study(tmp_path)
    assert main(["study", "create", "--results", str(tmp_path / "layout"), "--out", str(study)]) == 2
    assert "it exists" in capsys.readouterr().err
    assert main(["study", "create", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "n.sqlite")]) == 2
    assert "not a directory" in capsys.readouterr().err


def write_answers(path, mats_by_block, labels, golden=None):
    """An answers CSV in the export's columns from per-observer count matrices."""
    rows = []
    for block, mats in mats_by_block.items():
        for k, mat in enumerate(mats):
            for i, j in zip(*np.nonzero(mat)):
                rows += [{"observer": f"o{k}", "block": block, "condition_A": labels[i], "condition_B": labels[j],
                          "is_A_selected": 1, "rt_ms": 500, "golden": 0}] * int(mat[i, j])
    for observer, correct in (golden or {}).items():
        rows.append({"observer": observer, "block": "b0", "condition_A": "reference", "condition_B": "distorted",
                     "is_A_selected": int(correct), "rt_ms": 400, "golden": 1})
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["observer", "block", "condition_A", "condition_B", "is_A_selected",
                                         "rt_ms", "golden"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_scale_a_csv_screens_observers_and_writes_tables_and_plots(tmp_path, capsys):
    labels = ["l2", "l1", "ssim", "msssim", "mdf"]
    true = [0.0, 0.6, 1.4, 2.2, 3.5]
    rng = np.random.default_rng(0)
    blocks = {f"b{n}": simulate.full_design(true, 12, rng, random_clickers=1) for n in range(3)}
    answers = write_answers(tmp_path / "answers.csv", blocks, labels, golden={"o0": False, "o1": True})
    code = main(["study", "scale", str(answers), "--out", str(tmp_path / "out"), "--bootstrap", "40"])
    printed = capsys.readouterr().out
    assert code == 0 and "11 observers scaled, 1 excluded by golden trials" in printed
    assert "not meaningful" not in printed
    scores = {r["condition"]: r for r in read_csv(tmp_path / "out" / "jnd.csv") if r["group"] == "all"}
    assert list(sorted(scores, key=lambda c: float(scores[c]["jnd"]))) == labels
    assert all(float(r["ci_low"]) <= float(r["jnd"]) <= float(r["ci_high"]) for r in scores.values())
    observers = {r["observer"]: r for r in read_csv(tmp_path / "out" / "observers.csv")}
    assert observers["o0"]["excluded"] == "passed 0 of 1 golden trials" and observers["o1"]["excluded"] == ""
    clicker = observers["o11"]
    assert clicker["flagged"] == "1" and float(clicker["dist_L"]) == max(float(o["dist_L"]) for o in observers.values() if not o["excluded"])
    pairs = read_csv(tmp_path / "out" / "significance.csv")
    assert {(p["condition_i"], p["condition_j"]) for p in pairs if p["group"] == "all"} >= {("l1", "l2")}
    assert (tmp_path / "out" / "fig5-jnd.png").stat().st_size > 1000


def bench_with_a_starred_loss(tmp_path):
    """fake_bench with its loss mdf renamed 3*mdf, in run folder 3xmdf (as the bench names it)."""
    bench = fake_bench(tmp_path / "bench", images=2, size=16)
    results = bench / "results.csv"
    results.write_text(results.read_text().replace(",mdf,", ",3*mdf,"))
    manifest = json.loads((bench / "manifest.json").read_text())
    manifest["experiments"]["denoise-dncnn"]["runs"]["3*mdf"] = {"folder": "denoise-dncnn/3xmdf"}
    (bench / "manifest.json").write_text(json.dumps(manifest))
    return results


def answers_on(path, blocks, conditions=("l1", "l2", "3xmdf"), observers=3):
    rows = ["observer,block,condition_A,condition_B,is_A_selected"]
    for k in range(observers):
        for block in blocks:
            rows += [f"o{k},{block},{a},{b},{(k + n) % 2}" for n, (a, b) in
                     enumerate([(conditions[0], conditions[1]), (conditions[1], conditions[2]), (conditions[0], conditions[2])])]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_scale_finds_bench_psnrs_through_the_run_folder_names(tmp_path, capsys):
    results = bench_with_a_starred_loss(tmp_path)
    psnr = mean_psnr(results, ["img0", "val/sigma25/img1"], ["l1", "l2", "3xmdf"])
    assert psnr == pytest.approx({"l1": 30.05, "l2": 27.05, "3xmdf": 24.05})
    answers = answers_on(tmp_path / "a.csv", ["img0", "img1"])
    assert main(["study", "scale", str(answers), "--out", str(tmp_path / "o"), "--bootstrap", "10",
                 "--bench-results", str(results)]) == 0
    assert (tmp_path / "o" / "fig6-psnr-jnd.png").stat().st_size > 1000


@pytest.mark.parametrize(("case", "message"), [
    ("no manifest", "expected rows for the conditions ['3xmdf'] in"),
    ("an image the bench lacks", "expected one row for image img9 of 3xmdf (bench loss 3*mdf) in"),
    ("two datasets", "found 2 rows (datasets ['val/sigma25', 'val/sigma50'])"),
])
def test_scale_refuses_bench_results_that_do_not_match_the_study(tmp_path, capsys, case, message):
    results = bench_with_a_starred_loss(tmp_path)
    blocks = ["img0", "img1"]
    if case == "no manifest":
        (results.parent / "manifest.json").unlink()
    elif case == "an image the bench lacks":
        blocks.append("img9")
    else:
        with results.open("a") as handle:
            handle.write("denoise,dncnn,l1,val/sigma50,img0.png,20,0,0,0,\n")
    answers = answers_on(tmp_path / "a.csv", blocks)
    assert main(["study", "scale", str(answers), "--out", str(tmp_path / "o"), "--bench-results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mdfloss study: error: --bench-results: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_scale_says_when_intervals_rest_on_too_few_observers(tmp_path, capsys):
    answers = answers_on(tmp_path / "a.csv", ["img0", "img1"], observers=3)
    assert main(["study", "scale", str(answers), "--out", str(tmp_path / "o"), "--bootstrap", "20"]) == 0
    assert "note: the 95% intervals are not meaningful with 3 observers (about 10 or more are needed)" in capsys.readouterr().out
    notes = {r["group"]: r["note"] for r in read_csv(tmp_path / "o" / "jnd.csv")}
    assert all("interval not meaningful: 3 observers answered here" in notes[g] for g in ("img0", "img1", "all"))


def test_scale_counts_how_often_each_condition_of_a_pair_was_chosen(tmp_path):
    """significance.csv's share_i: a hand-counted case, with A/B swapped between rows."""
    kept = ["o0,b1,a,b,1", "o1,b1,a,b,0", "o2,b1,b,a,0",   # b1: a chosen 2 of 3 times
            "o0,b1,b,c,1", "o1,b1,c,b,0", "o2,b1,a,c,1",
            "o0,b2,a,b,1", "o1,b2,b,c,1", "o2,b2,c,a,1"]   # b2: a chosen 1 of 1; pooled: 3 of 4
    excluded = ["o3,b1,b,a,1", "o3,b2,b,a,1"]            # o3 fails its golden trial: not counted
    rows = (["observer,block,condition_A,condition_B,is_A_selected,golden"]
            + [f"{row},0" for row in kept + excluded] + ["o3,b1,reference,distorted,0,1"])
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    assert main(["study", "scale", str(tmp_path / "a.csv"), "--out", str(tmp_path / "o"), "--bootstrap", "10"]) == 0
    pairs = {(r["group"], r["condition_i"], r["condition_j"]): r for r in read_csv(tmp_path / "o" / "significance.csv")}
    ab = {group: pairs.get((group, "a", "b")) or pairs[group, "b", "a"] for group in ("b1", "b2", "all")}
    share_a = {group: float(r["share_i"]) if r["condition_i"] == "a" else 1 - float(r["share_i"]) for group, r in ab.items()}
    assert share_a == pytest.approx({"b1": 2 / 3, "b2": 1.0, "all": 3 / 4}, abs=1e-4)
    assert [int(ab[g]["comparisons"]) for g in ("b1", "b2", "all")] == [3, 1, 4]
    ca = pairs.get(("all", "c", "a")) or pairs["all", "a", "c"]
    assert int(ca["comparisons"]) == 2   # o2 b1 (a chosen) and o2 b2 (c chosen)


def test_scale_flags_a_disconnected_image_and_still_scales_the_rest(tmp_path, capsys):
    rows = ["observer,block,condition_A,condition_B,is_A_selected"]
    for k in range(3):
        rows += [f"o{k},ok,a,b,1", f"o{k},ok,b,c,{k % 2}", f"o{k},split,a,b,1", f"o{k},split,c,d,0"]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    assert main(["study", "scale", str(tmp_path / "a.csv"), "--out", str(tmp_path / "o"), "--bootstrap", "10"]) == 0
    assert "not scaled: split: comparisons: expected a connected comparison graph, got 2 groups" in capsys.readouterr().out
    notes = {r["group"]: r["note"] for r in read_csv(tmp_path / "o" / "jnd.csv") if r["note"]}
    assert "never compared" in notes["split"]


@pytest.mark.parametrize(("text", "message"), [
    ("observer,scene,condition_A,condition_B,is_A_selected\n", "missing block (found observer, scene"),
    ("observer,block,condition_A,condition_B,is_A_selected\no1,b,x,y,yes\n", "line 2: is_A_selected: expected 0 or 1"),
    ("observer,block,condition_A,condition_B,is_A_selected\n", "expected answered test trials"),
])
def test_scale_mistakes_are_one_line_and_exit_code_2(tmp_path, capsys, text, message):
    (tmp_path / "bad.csv").write_text(text)
    assert main(["study", "scale", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mdfloss study: error: ") and message in err and err.count("\n") == 1


def test_export_writes_one_row_per_answer_with_the_pwcmp_columns(tmp_path, capsys):
    study = make_study(tmp_path, trials=3)
    store = Store(study)
    from mdfloss.study.design import session_planner

    token = store.create_session(session_planner(store, None, np.random.default_rng(0)))
    for trial in store.upcoming(token, 10)[0]:
        store.submit(token, trial.id, "left", 321)
    assert main(["study", "export", str(study), "--out", str(tmp_path / "answers.csv")]) == 0
    rows = read_csv(tmp_path / "answers.csv")
    assert list(rows[0]) == ["observer", "block", "condition_A", "condition_B", "is_A_selected", "rt_ms", "golden"]
    assert len(rows) == 4 and {r["observer"] for r in rows} == {"o1"} and {r["rt_ms"] for r in rows} == {"321"}
    golden = [r for r in rows if r["golden"] == "1"]
    assert len(golden) == 1 and golden[0]["condition_A"] == "reference"
    assert all(r["is_A_selected"] == "1" for r in rows if r["golden"] == "0")  # A is the left image
    capsys.readouterr()
    assert main(["study", "export", str(study)]) == 0
    assert capsys.readouterr().out.count("\n") == 5


def test_serve_refuses_a_file_that_is_not_a_study_without_a_traceback(tmp_path):
    (tmp_path / "x.sqlite").write_text("not sqlite")
    result = subprocess.run([sys.executable, "-m", "mdfloss.cli", "study", "serve", str(tmp_path / "x.sqlite")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("mdfloss study: error: study: expected a study file")


def test_import_mdfloss_does_not_load_the_web_framework():
    code = "import sys, mdfloss; print(any(m.split('.')[0] in ('flask', 'werkzeug', 'scipy') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
