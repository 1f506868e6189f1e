"""End to end in headless Chromium (selenium): a whole session with keys, clicks, a reload and a
return through the Back button in the middle, the end page (and its reload), then the stored
answers, the export and the scaling.

Needs Debian's ``chromium`` and ``chromium-driver`` (CI installs them, see .ci/run); skips only
when they cannot be found. Set MDFLOSS_STUDY_SCREENSHOT=path.png to keep the trial page's screenshot.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from study_fixtures import make_study

from mdfloss.cli import main
from mdfloss.study.serving import StudyServer
from mdfloss.study.store import Store

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")

BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
pytestmark = pytest.mark.skipif(
    BROWSER is None or DRIVER is None,
    reason=f"headless Chromium not found (chromium: {BROWSER}, chromedriver: {DRIVER}); "
           "install with: apt-get install -y chromium chromium-driver")


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not reach for the network
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,760", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout=15):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d))


def state(driver):
    return driver.execute_script("return document.getElementById('study').dataset")


def ready(driver, previous=None):
    """Wait until a trial other than ``previous`` is shown and answerable; its id."""
    def shown(d):
        data = state(d)
        return data.get("state") == "ready" and data.get("trial") != previous and data.get("trial")
    return wait_for(driver, shown)


def assert_end_page(driver, code):
    """Only the thanks and the code are visible: no images, buttons, hint or resume link."""
    from selenium.webdriver.common.by import By

    assert code and driver.find_element(By.ID, "code").text == code and driver.find_element(By.ID, "done").is_displayed()
    hidden = ["trial", "reference", "left", "right", "left-button", "right-button", "hint", "resume"]
    assert not [i for i in hidden if driver.find_element(By.ID, i).is_displayed()]
    assert driver.execute_script("return getComputedStyle(document.getElementById('trial')).display") == "none"


def test_a_whole_session_in_headless_chromium(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    study = make_study(tmp_path, trials=6, images=2, crop=160, size=200)
    server = StudyServer(Store(study), port=0, seed=0).start()
    try:
        browser.get(server.url + "/?pid=tester-1")
        assert browser.find_element(By.NAME, "external_id").get_attribute("value") == "tester-1"
        browser.find_element(By.ID, "start").click()
        wait_for(browser, lambda d: "/s/" in d.current_url)
        trial = ready(browser)
        # buttons wake up only with the images; the images are at their own pixel size
        assert all(b.is_enabled() for b in browser.find_elements(By.CSS_SELECTOR, "button.answer"))
        sizes = browser.execute_script(
            "return ['reference','left','right'].map(id => { const i = document.getElementById(id);"
            " return [i.naturalWidth, i.naturalHeight, i.clientWidth, i.clientHeight,"
            " i.complete]; })")
        assert all(s == [160, 160, 160, 160, True] for s in sizes), sizes
        assert "Comparison 1 of 7" in browser.find_element(By.ID, "counter").text
        shot = browser.get_screenshot_as_png()
        (tmp_path / "trial-page.png").write_bytes(shot)
        if os.environ.get("MDFLOSS_STUDY_SCREENSHOT"):
            Path(os.environ["MDFLOSS_STUDY_SCREENSHOT"]).write_bytes(shot)
        preloaded = browser.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.name.includes('/img/')).length")
        assert preloaded >= 6  # the shown trial's three images and the next trial's

        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.ARROW_LEFT)                                  # 1: key
        trial = ready(browser, trial)
        browser.find_element(By.ID, "right-button").click()              # 2: button
        trial = ready(browser, trial)
        browser.find_element(By.ID, "left").click()                      # 3: click on the image
        trial = ready(browser, trial)
        browser.refresh()                                                # reload mid-session
        resumed = ready(browser)
        assert resumed == trial and "Comparison 4 of 7" in browser.find_element(By.ID, "counter").text
        session_url = browser.current_url
        assert browser.find_element(By.ID, "resume-link").text == session_url
        browser.back()                                                   # Back to the start page...
        wait_for(browser, lambda d: d.current_url == session_url or d.find_elements(By.ID, "start"))
        if browser.current_url != session_url:
            browser.find_element(By.ID, "start").click()                 # ...and Start again
        wait_for(browser, lambda d: d.current_url == session_url)
        assert ready(browser) == trial and "Comparison 4 of 7" in browser.find_element(By.ID, "counter").text
        browser.get(server.url + "/")                                    # a later visit to /
        wait_for(browser, lambda d: d.current_url == session_url)
        assert ready(browser) == trial
        keys = [Keys.ARROW_RIGHT, Keys.ARROW_LEFT, Keys.ARROW_RIGHT, Keys.ARROW_LEFT]
        for n in range(4):
            browser.find_element(By.TAG_NAME, "body").send_keys(keys[n])
            if n < 3:
                trial = ready(browser, trial)
        wait_for(browser, lambda d: state(d).get("state") == "done")
        code = browser.find_element(By.ID, "code").text
        assert_end_page(browser, code)
        browser.refresh()                                                # reload of a finished session
        wait_for(browser, lambda d: state(d).get("state") == "done")
        assert_end_page(browser, code)
        browser.get(server.url + "/")                                    # the next observer starts afresh
        assert browser.find_elements(By.ID, "start")
    finally:
        server.stop()

    connection = sqlite3.connect(study)
    token = connection.execute("SELECT token FROM observer").fetchone()[0]
    assert code == Store(study).completion_code(token)
    answers = connection.execute("SELECT t.position, t.kind, a.side, a.rt_ms FROM answer a JOIN trial t "
                                 "ON t.id = a.trial_id ORDER BY t.position").fetchall()
    assert [a[0] for a in answers] == list(range(7))
    assert [a[2] for a in answers] == ["left", "right", "left", "right", "left", "right", "left"]
    assert {a[1] for a in answers} == {"test", "golden"} and all(a[3] > 0 for a in answers)
    assert connection.execute("SELECT external_id FROM observer").fetchone()[0] == "tester-1"

    assert main(["study", "export", str(study), "--out", str(tmp_path / "answers.csv")]) == 0
    with open(tmp_path / "answers.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7 and sum(r["golden"] == "1" for r in rows) == 1
    assert main(["study", "scale", str(tmp_path / "answers.csv"), "--out", str(tmp_path / "scaled"),
                 "--bootstrap", "0", "--min-golden", "0"]) == 0
    with open(tmp_path / "scaled" / "jnd.csv", newline="") as handle:
        pooled = [r for r in csv.DictReader(handle) if r["group"] == "all"]
    assert sorted(r["condition"] for r in pooled) == ["l1", "l2", "mdf"]
    assert (tmp_path / "scaled" / "fig5-jnd.png").is_file()
