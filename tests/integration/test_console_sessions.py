"""Console sessions in a real headless Chromium (issue #24 item 5): a page of another origin
cannot make the browser retry a job (no CSRF token: 403, the job untouched), logging out
ends the session for good (the old cookie, replayed, gets the login page), revoking the key
ends its sessions. The same test checks the views of a failed and retried job (error column,
runs, actions for a submit key) and takes their screenshots into var/test-artifacts/."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import stack

from producer.core.models.job_record import JobError, JobRecord, JobState
from tests.integration.test_console_browser import ARTIFACTS, log_in
from tests.integration.test_flower_browser import _chrome
from tests.integration.test_http_api import start_api  # noqa: F401 - the fixture
from tests.support.console import csrf_of
from tests.support.job_paths import walk

pytestmark = pytest.mark.integration


@pytest.fixture
def attacker() -> Iterator[tuple[str, dict[str, str]]]:
    """A page on another origin (127.0.0.1, another port: the same site, so SameSite=Strict
    still lets the browser send the cookie) whose form posts itself to `page["target"]`."""
    page: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = (f'<html><body><form id="f" method="post" action="{page["target"]}">'
                    '<input name="why" value="forged"></form>'
                    '<script>document.getElementById("f").submit()</script></body></html>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", page
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _failed(record: JobRecord) -> None:
    record.error = JobError(code="upstream_failure", message="the sandbox said no")


def test_forged_post_logout_and_revocation(start_api, attacker, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    api = start_api(workers=False)  # the job stays where the test puts it
    key = api.key("--scopes", "submit,read", "--tenant", "t-console")
    created = api.call("POST", "/v1/jobs", key, json={"provider": "udio", "request": {"prompt": "forged"},
                                                             "deadline": "1h"})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    store = api.stack_.queue().store
    marks = len(walk(store, job_id, JobState.FAILED, _failed).transitions)
    evil_url, evil = attacker
    browser = _chrome(tmp_path / "profile")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        log_in(browser, api.url, key)
        # The forged POST: the browser sends the session cookie (same site), but no token.
        evil["target"] = f"{api.url}/console/jobs/{job_id}/retry"
        browser.get(evil_url)
        WebDriverWait(browser, 30).until(lambda b: b.current_url.startswith(evil["target"]))
        assert "CSRF token" in browser.find_element(By.TAG_NAME, "body").text
        after = store.get(job_id)
        assert after is not None and after.state == JobState.FAILED and len(after.transitions) == marks

        # The job list has the error column; the job page offers the API's actions for a submit key.
        browser.get(f"{api.url}/console/jobs?error=upstream_failure&provider=udio")
        rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr[data-job]")
        assert [r.get_attribute("data-job") for r in rows] == [job_id]
        assert rows[0].find_element(By.CSS_SELECTOR, ".error-code").text == "upstream_failure"
        assert rows[0].find_element(By.CSS_SELECTOR, ".progress").text == ""
        browser.save_screenshot(str(ARTIFACTS / "console-jobs-filtered.png"))
        browser.get(f"{api.url}/console/jobs/{job_id}")
        assert not browser.find_elements(By.ID, "progress")  # no progress bar on a FAILED job
        assert browser.find_element(By.ID, "deadline").text.startswith("deadline 20")  # the caller's, as a UTC time
        browser.find_element(By.ID, "retry").click()  # the real form, with its token
        stack.wait_until(lambda: store.get(job_id).state == JobState.QUEUED, 30, "the console's retry")
        walk(store, job_id, JobState.FAILED, _failed)
        browser.get(f"{api.url}/console/jobs/{job_id}")
        labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".run-label")]
        assert labels == ["run 1", "run 2"]
        browser.save_screenshot(str(ARTIFACTS / "console-job-retried.png"))

        # Logout ends the session server-side: the old cookie, replayed, gets the login page.
        cookie = browser.get_cookie("songqueue_console_session")
        assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and key not in cookie["value"]
        browser.find_element(By.ID, "logout").click()
        WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith("/console/login"))
        replayed = requests.get(f"{api.url}/console/jobs", cookies={cookie["name"]: cookie["value"]},
                                allow_redirects=False, timeout=30)
        assert replayed.status_code == 303 and replayed.headers["location"] == "/console/login"
        assert requests.get(f"{api.url}/v1/jobs/{job_id}", cookies={cookie["name"]: cookie["value"]},
                            timeout=30).status_code == 401

        # Revoking the key ends the sessions it has.
        log_in(browser, api.url, key)
        listed = api.stack_.cli("keys", "list", "--json")
        key_id = next(k["id"] for k in json.loads(listed.stdout) if k["tenant"] == "t-console")
        assert api.stack_.cli("keys", "revoke", key_id).returncode == 0
        browser.get(f"{api.url}/console/jobs")
        assert browser.current_url.endswith("/console/login")
    finally:
        browser.quit()


def test_cookies_over_http_and_https_and_the_login_token(start_api):  # noqa: F811
    """Over plain HTTP: the session cookie holds an id, not the key. Behind a TLS proxy (its
    `X-Forwarded-Proto: https` from 127.0.0.1, which uvicorn trusts): Secure too. Login and
    log out without their token: 403, nothing done."""
    api = start_api(workers=False)
    key = api.key("--scopes", "read")
    for proto, secure in (("http", False), ("https", True)):
        browser = requests.Session()
        browser.headers["X-Forwarded-Proto"] = proto
        assert browser.post(f"{api.url}/console/login", data={"api_key": key}, allow_redirects=False).status_code == 403
        assert browser.post(f"{api.url}/console/login", data={"api_key": key, "csrf": "guess"},
                            allow_redirects=False).status_code == 403  # no pre-session cookie yet: any token fails
        page = browser.get(f"{api.url}/console/login", timeout=30)
        # requests sends no Secure cookie to an http:// URL (the browser behind the proxy spoke https): by hand.
        pre = page.cookies["songqueue_console_login"]
        answer = requests.post(f"{api.url}/console/login", data={"api_key": key, "csrf": csrf_of(page.text)},
                               headers={"X-Forwarded-Proto": proto, "Cookie": f"songqueue_console_login={pre}"},
                               allow_redirects=False, timeout=30)
        assert answer.status_code == 303, answer.text
        cookie = next(c for c in answer.raw.headers.getlist("set-cookie") if c.startswith("songqueue_console_session="))
        assert key not in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
        assert ("Secure" in cookie) is secure, cookie
        if not secure:
            browser.cookies.update(answer.cookies)
            forged = browser.post(f"{api.url}/console/logout", allow_redirects=False)
            assert forged.status_code == 403 and forged.headers["content-type"] == "application/problem+json"
            assert browser.get(f"{api.url}/console/jobs", allow_redirects=False).status_code == 200  # still in
