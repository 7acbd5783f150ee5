"""The console in a real headless Chromium: log in with a key, submit every model of every
provider from the generated form, see a field's error next to it, watch a job reach
SUCCEEDED, play the first song; the API reference at /docs renders from the server alone.
Screenshots of every page go to var/test-artifacts/ (listed in docs/console.md)."""

from __future__ import annotations

import typing
import uuid
from pathlib import Path

import pytest
import stack

from producer.core.models.providers import PROVIDERS
from tests.integration.test_flower_browser import _chrome
from tests.integration.test_http_api import start_api  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
ARTIFACTS = Path(stack.ROOT) / "var" / "test-artifacts"

# What each provider's form needs filled besides its model choice, per model where it differs.
_FILL: dict[str, dict[str, str]] = {
    "udio": {"prompt": "console every model"},
    "minimax": {"prompt": "calm piano", "lyrics": "la la la"},
    "minimax:music-01": {"lyrics": "##\nla la la\n##", "refer_voice": "vocal-console"},
    "suno": {"gpt_description_prompt": "a song about tea"},
}


def log_in(browser, url: str, key: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{url}/console/login")
    browser.find_element(By.ID, "api_key").send_keys(key)
    browser.find_element(By.ID, "login").click()
    WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith("/console/jobs"))


def _models(provider: str) -> list[str]:
    spec = PROVIDERS[provider]
    return list(typing.get_args(spec.request_model.model_fields[spec.model_field].annotation))


def _submit(browser, url: str, provider: str, fields: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # The job page just left reloads itself when its job's state moves: a reload racing this
    # navigation can win, so open the form until it is there.
    WebDriverWait(browser, 30).until(lambda b: b.get(f"{url}/console/submit") or b.find_elements(By.ID, "provider"))
    Select(browser.find_element(By.ID, "provider")).select_by_value(provider)
    for name, value in fields.items():
        box = browser.find_element(By.NAME, f"{provider}.{name}")
        if box.tag_name == "select":
            Select(box).select_by_value(value)
        else:
            box.clear()
            box.send_keys(value)
    browser.find_element(By.ID, "submit").click()


def test_every_model_of_every_provider_submits(start_api, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    api = start_api()
    key = api.key("--scopes", "submit,read")
    browser = _chrome(tmp_path / "profile")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        banner = (api.stack_.tmp / "api.log").read_text()  # `songqueue api` names the console's URL
        assert f"console: {api.url}/console" in banner, banner
        browser.get(f"{api.url}/")  # the API's root leads to the console
        WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith("/console/login"))
        browser.save_screenshot(str(ARTIFACTS / "console-login.png"))
        log_in(browser, api.url, key)
        queue = api.stack_.queue()
        for provider in PROVIDERS:
            for model in _models(provider):
                fields = {**_FILL.get(f"{provider}:{model}", _FILL[provider]), PROVIDERS[provider].model_field: model}
                _submit(browser, api.url, provider, fields)
                WebDriverWait(browser, 30).until(lambda b: "/console/jobs/" in b.current_url,
                                                 f"{provider} {model}: {browser.page_source[:2000]}")
                record = queue.status(browser.current_url.rsplit("/", 1)[1])
                assert (record.provider, record.model) == (provider, model)
                # music-01 refuses any field of the newer models: none was sent that the caller did not set.

        # A rule the model refuses comes back next to its field, with the help under each field.
        _submit(browser, api.url, "minimax", {"lyrics": "##\nla\n##"})
        error = WebDriverWait(browser, 30).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, '[data-field="minimax.refer_voice"] .field-error'))
        assert "at least one of refer_voice" in error[0].text
        assert browser.find_element(By.CSS_SELECTOR, '[data-field="minimax.refer_voice"] .help').is_displayed()
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", error[0])
        browser.save_screenshot(str(ARTIFACTS / "console-submit-errors.png"))
        browser.get(f"{api.url}/console/playlists")
        browser.save_screenshot(str(ARTIFACTS / "console-playlists.png"))

        # /docs renders Swagger UI from the server alone: every resource it loaded is the API's own.
        browser.get(f"{api.url}/docs")
        title = WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title"))
        assert "songqueue" in title[0].text
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded and all(u.startswith(api.url) for u in loaded), loaded
        browser.save_screenshot(str(ARTIFACTS / "api-docs.png"))
        browser.get(f"{api.url}/redoc")
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".api-content"))
        # ReDoc's own "powered by" logo is an <img> from its site (a broken image offline); its code is local.
        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.initiatorType !== 'img').map(e => e.name)")
        assert all(u.startswith(api.url) for u in loaded), loaded
    finally:
        browser.quit()


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

        # The page follows the job's events and reloads itself when the state changes, so an element found
        # before a reload is stale after it: read the state in one script call, which sees one page whole.
        WebDriverWait(browser, 180, poll_frequency=0.5).until(lambda b: b.execute_script(
            "const s = document.getElementById('state'); return s ? s.innerText.trim() : null;") == "SUCCEEDED")
        browser.get(browser.current_url)  # a page drawn SUCCEEDED: no reload of its own can race what follows
        audio = browser.find_element(By.TAG_NAME, "audio")
        browser.execute_script("arguments[0].muted = true; arguments[0].play();", audio)
        duration = WebDriverWait(browser, 30).until(
            lambda b: b.execute_script("const d = arguments[0].duration; return d > 0 && isFinite(d) ? d : null;", audio))
        assert duration > 0
        assert len(browser.find_elements(By.CSS_SELECTOR, ".timeline .span")) >= 3
        assert not browser.find_elements(By.ID, "progress")  # an ended job has no progress bar
        assert browser.find_element(By.ID, "expires").text.startswith("record kept until")
        assert not browser.find_elements(By.XPATH, "//h2[text()='Actions']")  # nothing to do on a SUCCEEDED job
        cover = browser.find_element(By.CSS_SELECTOR, "section.song img")
        natural = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", cover)
        drawn = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", cover)
        assert natural[0] > 0 and abs(drawn[0] / drawn[1] - natural[0] / natural[1]) < 0.02, (natural, drawn)
        browser.save_screenshot(str(ARTIFACTS / "console-job.png"))

        browser.get(f"{api.url}/console/jobs?q={prompt}")
        rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr[data-job]")
        assert [r.get_attribute("data-job") for r in rows] == [job_id]
        browser.save_screenshot(str(ARTIFACTS / "console-jobs.png"))
    finally:
        browser.quit()
