"""Flower in a real browser: an operator logs in and finds a job's submit, poll and download tasks.

Headless Chromium (Debian's `chromium` and `chromium-driver`, installed by `make browser`,
which .ci/run calls) driven by Selenium; Flower started by `songqueue flower` with basic
auth from settings, fed by real workers during a real run. A screenshot of the tasks page
is saved with the test output.
"""

from __future__ import annotations

import base64
import shutil
import uuid
from pathlib import Path

import pytest
import requests
import stack

from producer.core.models.job_record import JobState
from tests.support.ports import start_flower
from tests.support.prerequisites import missing

pytestmark = pytest.mark.integration

USER, PASSWORD = "ops", "flower-browser-Pa55"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,900")


def _chrome(profile: Path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        missing("headless Chromium is not installed: run `make browser` (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
    except ImportError:
        missing("selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def test_operator_finds_a_jobs_tasks_in_flower(make_stack, tmp_path):
    s = make_stack(flower_user=USER, flower_password=PASSWORD)
    flower, base = start_flower(s.env, tmp_path / "flower.log", launcher=True)
    browser = None
    try:
        # The password went through the environment, not the command line `ps` shows.
        cmdline = Path(f"/proc/{flower.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "flower" in cmdline and PASSWORD not in cmdline, cmdline
        assert requests.get(f"{base}/tasks", timeout=10).status_code == 401

        s.start_worker(concurrency=2)
        queue = s.queue()
        prompt = f"flower browser {uuid.uuid4().hex[:6]}"
        job = queue.submit({"prompt": prompt}).id
        assert queue.wait(job, timeout=60).state == JobState.SUCCEEDED

        def seen_by_flower() -> bool:
            tasks = requests.get(f"{base}/api/tasks", auth=(USER, PASSWORD), timeout=10).json().values()
            names = {t["name"] for t in tasks if job in (t.get("args") or "") and t.get("state") == "SUCCESS"}
            # No songqueue.finalize: the download run that stores the last object finalizes the job.
            return {"songqueue.submit", "songqueue.poll", "songqueue.download"} <= names

        stack.wait_until(seen_by_flower, 30, "Flower to have the job's task events")

        browser = _chrome(tmp_path / "chromium-profile")
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
        browser.get(f"{base}/tasks")
        search = WebDriverWait(browser, 30).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "#tasks-table_filter input"))
        search.send_keys(job)

        def rows_of_the_job(b) -> list[str] | bool:
            # The table is drawn by JavaScript from /tasks/datatable and redrawn while events
            # arrive: its rows are read in one script call, which sees one drawing whole (an
            # element found, then read after a redraw, would be stale).
            rows = b.execute_script(
                "return [...document.querySelectorAll('#tasks-table tbody tr')].map(r => r.innerText)")
            text = " ".join(rows)
            found = all(name in text for name in ("songqueue.submit", "songqueue.poll", "songqueue.download"))
            return rows if found and job in text else False

        rows = WebDriverWait(browser, 30).until(rows_of_the_job)
        shot = tmp_path / "flower-tasks.png"
        browser.save_screenshot(str(shot))
        print(f"\nFlower screenshot: {shot}")
        assert shot.stat().st_size > 10_000
        # What an operator reads in every row, retried polls included: the job, its provider
        # and the start of its prompt.
        assert all(f"job={job} provider=udio prompt='{prompt}'" in row for row in rows), rows
        assert s.env["SONGQUEUE_UDIO_API_KEY"] not in browser.page_source
    finally:
        if browser is not None:
            if not (tmp_path / "flower-tasks.png").exists():
                browser.save_screenshot(str(tmp_path / "flower-failed.png"))
                print(f"\nFlower screenshot (failed): {tmp_path / 'flower-failed.png'}")
            browser.quit()
        stack.stop(flower)
