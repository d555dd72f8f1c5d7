"""Accounts and safety in real headless Chromium: sign up, predict with a history, sign out; another user's rows;
a forged cross-origin post; the page under its CSP; axe-core at desktop and phone sizes; keyboard reach."""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from catalog.draw import draw_product
from tests.browser.conftest import DESKTOP, PASSWORD, PHONE, sign_up, start_site, wait

pytestmark = pytest.mark.browser
AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def _upload(driver, site: str, tmp_path: Path, seed: int = 1) -> None:
    path = tmp_path / f"photo{seed}.jpg"
    draw_product("trousers", seed, 300).save(path, "JPEG")
    driver.get(site + "/")
    wait(driver, lambda d: d.find_element("id", "history-note").text)
    driver.find_element("id", "file").send_keys(str(path))
    wait(driver, lambda d: len(d.find_elements("css selector", "#chart .bar")) == 3)


def _fetch(driver, path: str, method: str = "GET") -> list:
    """``[status, body text]`` of a same-origin fetch made by the page (with its cookie)."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: arguments[1]}).then(async (r) => done([r.status, await r.text()]));",
        path,
        method,
    )


def _history_total(driver) -> int:
    status, body = _fetch(driver, "/api/history")
    assert status == 200, body
    return int(json.loads(body)["total"])


def test_sign_up_predict_with_history_sign_out_and_back_in(browser, site, shots, tmp_path) -> None:
    sign_up(browser, site, "ann@example.org")
    _upload(browser, site, tmp_path)
    assert _history_total(browser) == 1
    browser.get(site + "/history")
    wait(browser, lambda d: len(d.find_elements("css selector", "#rows tbody tr")) == 1)
    browser.find_element("css selector", "#account-nav button").click()  # sign out
    wait(browser, lambda d: "Sign in" in d.find_element("id", "account-nav").text)
    assert "Sign in to keep" in wait(browser, lambda d: d.find_element("id", "history-note").text)
    browser.get(site + "/history")
    wait(browser, lambda d: d.find_element("id", "signed-out").is_displayed())
    browser.get(site + "/login?next=/history")
    browser.find_element("id", "login-email").send_keys("ann@example.org")
    browser.find_element("id", "login-password").send_keys("wrong password!")
    browser.find_element("css selector", "#login-form button").click()
    assert "wrong email or password" in wait(browser, lambda d: d.find_element("id", "login-error").text)
    browser.find_element("id", "login-password").clear()
    browser.find_element("id", "login-password").send_keys(PASSWORD)
    browser.find_element("css selector", "#login-form button").click()
    wait(browser, lambda d: d.current_url.endswith("/history"))
    wait(browser, lambda d: len(d.find_elements("css selector", "#rows tbody tr")) == 1)


def test_a_second_user_can_neither_see_nor_delete_the_first_users_rows(browser, site, tmp_path) -> None:
    sign_up(browser, site, "first@example.org")
    _upload(browser, site, tmp_path)
    _, body = _fetch(browser, "/api/history")
    row = json.loads(body)["rows"][0]["id"]
    sign_up(browser, site, "second@example.org")
    browser.get(site + "/history")
    wait(browser, lambda d: d.find_element("id", "empty").is_displayed())
    assert _fetch(browser, f"/api/history/{row}", "DELETE")[0] == 404
    assert _fetch(browser, f"/api/history/{row}/thumbnail")[0] == 404
    browser.delete_all_cookies()
    browser.get(site + "/login")
    browser.find_element("id", "login-email").send_keys("first@example.org")
    browser.find_element("id", "login-password").send_keys(PASSWORD)
    browser.find_element("css selector", "#login-form button").click()
    wait(browser, lambda d: "first@example.org" in d.find_element("id", "account-nav").text)
    assert _history_total(browser) == 1


class _EvilPage(http.server.BaseHTTPRequestHandler):
    """Another origin: its page posts to the STJ site with the visitor's cookie, as a forged request would."""

    target = ""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        buf = io.BytesIO()
        draw_product("saree", 3, 120).save(buf, "JPEG")  # a photo the server would accept and keep
        photo = base64.b64encode(buf.getvalue()).decode()
        page = f"""<!doctype html><title>win a prize</title>
<form id="f" method="POST" action="{self.target}/api/logout"><input name="x" value="1"></form>
<script>
const form = new FormData();
const bytes = Uint8Array.from(atob("{photo}"), (c) => c.charCodeAt(0));
form.append("image", new Blob([bytes], {{type: "image/jpeg"}}), "x.jpg");
fetch("{self.target}/predict?history=1", {{method: "POST", mode: "no-cors", credentials: "include", body: form}})
  .finally(() => document.getElementById("f").submit());
</script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def test_signing_in_never_leads_to_another_site(browser, site) -> None:
    """``?next=`` paths that resolve to ``//host`` (protocol-relative: another site) land on this one."""
    for sneaky in ("/.//other-host/pwned", "/..//other-host", "/%2e//other-host", "/./\\other-host", "//other-host"):
        browser.get(f"{site}/login?next={sneaky}")
        target = urlsplit(urljoin(browser.current_url, browser.execute_script("return nextPage()")))
        assert (target.netloc, target.path.startswith("//")) == (urlsplit(site).netloc, False), (sneaky, target)
    assert browser.execute_script("return nextPage()") == site + "/"  # the last one: nowhere but home
    browser.get(f"{site}/login?next=/history?page=2")
    assert browser.execute_script("return nextPage()") == site + "/history?page=2"  # a real path is kept
    sign_up(browser, site, "next@example.org")
    _fetch(browser, "/api/logout", "POST")
    browser.get(f"{site}/login?next=/.//other-host/pwned")
    browser.find_element("id", "login-email").send_keys("next@example.org")
    browser.find_element("id", "login-password").send_keys(PASSWORD)
    browser.find_element("css selector", "#login-form button").click()
    wait(browser, lambda d: "next@example.org" in d.find_element("id", "account-nav").text)
    assert urlsplit(browser.current_url).netloc == urlsplit(site).netloc, browser.current_url


def test_a_cross_origin_form_post_and_no_cors_fetch_are_refused(browser, site, tmp_path) -> None:
    sign_up(browser, site, "victim@example.org")
    _upload(browser, site, tmp_path)
    handler = type("Evil", (_EvilPage,), {"target": site})
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{evil.server_port}/")
        wait(browser, lambda d: "cross_origin" in d.find_element("tag name", "body").text)  # the form's answer
    finally:
        evil.shutdown()
        evil.server_close()
    browser.get(site + "/")
    wait(browser, lambda d: "victim@example.org" in d.find_element("id", "account-nav").text)  # still signed in
    assert _history_total(browser) == 1  # the no-cors fetch added nothing


def test_security_headers_and_the_page_under_its_csp(browser, site, tmp_path) -> None:
    headers = requests.get(site + "/", timeout=10).headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    browser.get_log("browser")  # drop earlier messages
    _upload(browser, site, tmp_path)
    for page in ("/history", "/login", "/docs"):
        browser.get(site + page)
    wait(browser, lambda d: d.find_elements("css selector", "#swagger-ui .opblock"))  # swagger-ui runs under it
    assert not [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    browser.get(site + "/")
    ran = browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        "document.body.append(s); return window.injected === 1;"
    )
    assert ran is False  # an injected inline script does not run
    assert [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]


def _axe(driver) -> list[dict]:
    driver.execute_script(AXE.read_text())
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then((r) => done(r.violations.map((v) => ("
        "{id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))));"
    )


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_pages_have_no_serious_accessibility_violations_and_fit_a_phone(browser, site, shots, tmp_path, size) -> None:
    sign_up(browser, site, f"axe{size[0]}@example.org")
    browser.set_window_size(*size)
    try:
        _upload(browser, site, tmp_path)  # the page with its results
        pages = {"classify": "/", "history": "/history", "about": "/about", "login": "/login", "account": "/account"}
        for name, path in pages.items():
            if path != "/":
                browser.get(site + path)
                wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
                wait(browser, lambda d, p=path: p == "/login" or d.find_element("id", "account-nav").text)
            bad = [v for v in _axe(browser) if v["impact"] in ("serious", "critical")]
            assert not bad, (path, bad)
            sideways = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert sideways <= 0, (path, sideways)
            browser.save_screenshot(str(shots / f"{name}-{'phone' if size == PHONE else 'desktop'}.png"))
        browser.execute_script("document.body.append(document.createElement('button'))")  # control: no name
        assert "button-name" in [v["id"] for v in _axe(browser)]
    finally:
        browser.set_window_size(*DESKTOP)


def test_the_upload_control_is_reachable_by_keyboard(browser, site) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.get(site + "/")
    body = browser.find_element("tag name", "body")
    for _ in range(20):
        body.send_keys(Keys.TAB) if browser.switch_to.active_element == body else None
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if browser.switch_to.active_element.get_attribute("id") == "file":
            break
    assert browser.switch_to.active_element.get_attribute("id") == "file"
    outline = browser.execute_script("return getComputedStyle(document.querySelector('label[for=file]')).outlineStyle")
    assert outline != "none"  # the visible button shows the focus


def test_examples_drop_and_paste_predict_and_scroll_to_the_result(browser, site) -> None:
    browser.set_window_size(1300, 700)  # the result starts below the fold
    try:
        browser.get(site + "/")
        browser.find_element("css selector", ".example[data-src$='jeans.jpg']").click()
        wait(browser, lambda d: len(d.find_elements("css selector", "#chart .bar")) == 3)
        wait(browser, lambda d: d.execute_script("return window.scrollY") > 100)  # scrolled to the result
        for event in ("drop", "paste"):
            browser.get(site + "/")
            done = browser.execute_async_script(
                "const [kind, done] = [arguments[0], arguments[arguments.length - 1]];"
                "fetch('/static/examples/saree.jpg').then((r) => r.blob()).then((blob) => {"
                "  const data = new DataTransfer(); data.items.add(new File([blob], 's.jpg', {type: 'image/jpeg'}));"
                "  const e = kind === 'drop' ? new DragEvent('drop', {dataTransfer: data, bubbles: true})"
                "                            : new ClipboardEvent('paste', {clipboardData: data, bubbles: true});"
                "  (kind === 'drop' ? document.getElementById('drop') : document).dispatchEvent(e); done(true); });",
                event,
            )
            assert done
            wait(browser, lambda d: len(d.find_elements("css selector", "#chart .bar")) == 3)
    finally:
        browser.set_window_size(*DESKTOP)


def test_a_correction_sent_from_the_page_is_decided_on_review(browser, app_for, make_predictor, tmp_path) -> None:
    from selenium.webdriver.support.ui import Select

    url, server = start_site(app_for, tmp_path / "site", make_predictor())
    try:
        sign_up(browser, url, "bob@example.org")
        _upload(browser, url, tmp_path)
        wait(browser, lambda d: d.find_element("id", "correction").is_displayed())
        wrong = Select(browser.find_element("id", "correct-class")).first_selected_option.text
        browser.find_element("css selector", "#correction button[type=submit]").click()
        status = wait(browser, lambda d: d.find_element("id", "correction-status").text)
        assert status.startswith(f'Thanks: sent as "{wrong}"'), status
        browser.get(url + "/review")  # bob is no admin: the page says so
        assert "only an admin may review" in wait(browser, lambda d: d.find_element("id", "status").text)

        sign_up(browser, url, "ann@example.org")
        server.app.extensions["stj"].accounts.grant("ann@example.org")
        browser.get(url + "/")
        wait(browser, lambda d: d.find_elements("css selector", "nav a[href='/review']"))  # an admin's header
        browser.get(url + "/review")
        flag = wait(
            browser,
            lambda d: d.find_elements("css selector", "#flags li img") and d.find_element("css selector", "#flags li"),
        )
        wait(browser, lambda d: d.execute_script("return document.querySelector('#flags li img').naturalWidth") > 0)
        assert wrong in flag.text
        Select(flag.find_element("css selector", "select[aria-label=decision]")).select_by_value("relabel")
        Select(flag.find_element("css selector", "select[aria-label=class]")).select_by_value("saree")
        flag.find_element("css selector", "button[type=submit]").click()
        wait(browser, lambda d: "decided: relabel → saree" in d.find_element("css selector", "#flags li").text)
        assert "Saved" in browser.find_element("id", "status").text
        browser.refresh()  # the decision is stored, not just shown
        wait(browser, lambda d: "decided: relabel → saree" in d.find_element("css selector", "#flags li").text)
        bad = [v for v in _axe(browser) if v["impact"] in ("serious", "critical")]
        assert not bad, bad
    finally:
        server.shutdown()
