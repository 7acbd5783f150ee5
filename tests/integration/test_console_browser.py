"""The console in a real headless Chromium: log in with a key, submit from the generated
form, watch the job reach SUCCEEDED, play the first song. Screenshots go to
var/test-artifacts/ (the job page: var/test-artifacts/console-job.png)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import stack

from tests.integration.test_flower_browser import _chrome
from tests.integration.test_http_api import start_api  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
ARTIFACTS = Path(stack.ROOT) / "var" / "test-artifacts"


def test_log_in_submit_watch_and_play(start_api, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    api = start_api()
    key = api.key("--scopes", "admin")
    browser = _chrome(tmp_path / "profile")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        browser.get(f"{api.url}/console")
        assert "/console/login" in browser.current_url
        browser.find_element(By.ID, "api_key").send_keys("sq_wrong")
        browser.find_element(By.ID, "login").click()
        # click() returns before the answer's page is in: wait for it, not for a moment.
        error = WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "login-error"))
        assert "unknown or revoked key" in error[0].text
        browser.find_element(By.ID, "api_key").send_keys(key)
        browser.find_element(By.ID, "login").click()
        WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith("/console/jobs"))

        browser.get(f"{api.url}/console/submit")
        prompt = f"console {uuid.uuid4().hex[:8]}"
        browser.find_element(By.NAME, "udio.prompt").send_keys(prompt)
        seed = browser.find_element(By.NAME, "udio.seed")
        seed.clear()
        seed.send_keys("5")
        browser.save_screenshot(str(ARTIFACTS / "console-submit.png"))
        browser.find_element(By.ID, "submit").click()
        WebDriverWait(browser, 30).until(lambda b: "/console/jobs/" in b.current_url)
        job_id = browser.current_url.rsplit("/", 1)[1]
        record = api.stack_.queue().status(job_id)
        assert record.request["prompt"] == prompt and record.request["seed"] == 5

        # The page follows the job's events and redraws itself when the state changes.
        WebDriverWait(browser, 180, poll_frequency=0.5).until(
            lambda b: b.find_element(By.ID, "state").text == "SUCCEEDED")
        audio = browser.find_element(By.TAG_NAME, "audio")
        browser.execute_script("arguments[0].muted = true; arguments[0].play();", audio)
        duration = WebDriverWait(browser, 30).until(
            lambda b: b.execute_script("const d = arguments[0].duration; return d > 0 && isFinite(d) ? d : null;", audio))
        assert duration > 0
        assert len(browser.find_elements(By.CSS_SELECTOR, ".timeline .span")) >= 3
        assert browser.find_element(By.CSS_SELECTOR, "section.song img").get_attribute("naturalWidth") != "0"
        browser.save_screenshot(str(ARTIFACTS / "console-job.png"))

        browser.get(f"{api.url}/console/jobs?q={prompt}")
        rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr[data-job]")
        assert [r.get_attribute("data-job") for r in rows] == [job_id]
        browser.save_screenshot(str(ARTIFACTS / "console-jobs.png"))
    finally:
        browser.quit()
