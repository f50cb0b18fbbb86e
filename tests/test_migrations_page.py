"""Site Setup -> "Migrations" (``@@migrations``), in a real browser on a real ``pserve``.

Headless Chromium and chromedriver come from Debian's packages
(``scripts/venv.sh``: ``ensure_chromium``, called by ``test.sh``); Selenium is
pointed at ``/usr/bin/chromedriver`` and never downloads anything.  A missing
browser fails the test.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import add_pserve_sections, cli, stop, versions
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.kotti

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
KOTTI_HEAD = "814c4ec72f1"
NOTES_FIRST = "a1b2c3d4e5f6"
NOTES_HEAD = "b2c3d4e5f6a7"


@contextlib.contextmanager
def running_pserve(ini: Path, port: int, timeout: float = 90):
    """``pserve <ini>`` serving on ``port`` for the duration of the block; yields its log file."""
    log = ini.parent / f"pserve-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "pserve"), str(ini)],
            stdout=out, stderr=subprocess.STDOUT, cwd=str(ini.parent),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert proc.poll() is None, f"pserve exited:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"pserve did not serve in {timeout} s:\n{log.read_text()}"
                try:
                    # One request, once pserve listens (helpers.pserve says why).
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120).close()
                    break
                except urllib.error.HTTPError:
                    break
                except OSError:
                    time.sleep(0.2)
            yield log
        finally:
            stop(proc)


@contextlib.contextmanager
def chromium():
    """Headless Chromium through Debian's chromedriver (fails when either is missing)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), (
            f"{path} is missing: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; test.sh does it)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def with_static_files(ini: Path) -> Path:
    """Serve the site as Kotti's own ini does: behind fanstatic (its CSS and JavaScript)."""
    text = ini.read_text().replace("[app:main]", "[app:kotti]")
    ini.write_text(text + "\n[filter:fanstatic]\nuse = egg:fanstatic#fanstatic\n"
                   "\n[pipeline:main]\npipeline =\n    fanstatic\n    kotti\n")
    return ini


def test_admin_sees_every_location_and_what_upgrades_it(kotti_ini, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download
    ini = kotti_ini(db_url)
    assert cli(ini, "prepare").code == 0
    result = cli(ini, "downgrade", "--scripts=kotti_notes:alembic", f"--rev={NOTES_FIRST}")
    assert result.code == 0, result.err
    with_static_files(ini)
    port = add_pserve_sections(ini)
    base = f"http://127.0.0.1:{port}"

    with running_pserve(ini, port) as log, chromium() as browser:
        wait = WebDriverWait(browser, 30)

        # Anonymous: Kotti's login form, coming back to the page.
        browser.get(f"{base}/@@migrations")
        assert "/@@login?came_from=" in browser.current_url
        assert browser.find_elements(By.ID, "kotti-migrate-migrations") == []

        browser.find_element(By.ID, "form-login-login").send_keys("admin")
        browser.find_element(By.ID, "form-password").send_keys("secret")  # kotti.secret
        browser.find_element(By.CSS_SELECTOR, "#login-form button[name=submit]").click()
        wait.until(lambda b: b.current_url == f"{base}/@@migrations")
        page = browser.find_element(By.ID, "kotti-migrate-migrations")
        assert browser.title.startswith("Migrations")
        assert page.find_element(By.ID, "overall").text.lower() == "migrations pending"

        def cells(spec: str) -> dict[str, str]:
            panel = page.find_element(By.CSS_SELECTOR, f"[data-location='{spec}']")
            rows = panel.find_elements(By.CSS_SELECTOR, "tr")
            return {
                row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
                for row in rows
            }

        kotti = cells("kotti:alembic")
        assert kotti["Version table"] == "kotti_alembic_version"
        assert kotti["Current"] == kotti["Head(s)"] == KOTTI_HEAD
        assert kotti["Pending"] == "none"
        assert "Upgrade with" not in kotti
        assert kotti["At start-up"] == f"ok: kotti:alembic is at its head {KOTTI_HEAD}"

        notes = cells("kotti_notes:alembic")
        assert notes["Version table"] == "kotti_notes_alembic_version"
        assert notes["Current"] == NOTES_FIRST
        assert notes["Head(s)"] == NOTES_HEAD
        assert notes["Pending"] == f"{NOTES_HEAD} Create note_links"
        assert notes["Upgrade with"] == f"kotti-migrate {ini} upgrade --scripts=kotti_notes:alembic"
        assert notes["At start-up"].startswith(f"warn: kotti_notes:alembic is at {NOTES_FIRST}, behind")
        assert "in " in page.find_element(By.ID, "startup").text  # when and how long start-up took
        screenshot = tmp_path / "migrations-page.png"
        assert browser.save_screenshot(str(screenshot))
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert screenshot.stat().st_size > 10_000

        # The Site Setup menu (under the user's name) leads to the page.
        browser.get(f"{base}/")
        link = browser.find_element(By.CSS_SELECTOR, "#user-dropdown a[href$='/@@migrations']")
        assert not link.is_displayed()  # styled: the menu is closed
        browser.find_element(By.CSS_SELECTOR, ".navbar-right .dropdown-toggle").click()
        wait.until(lambda b: link.is_displayed())  # Bootstrap's dropdown opened
        assert link.text == "Migrations"
        assert link.get_attribute("href") == f"{base}/@@migrations"
        setup = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#user-dropdown a") if a.text]
        assert setup.index("Migrations") == setup.index("User Management") + 1
        link.click()
        wait.until(lambda b: b.current_url == f"{base}/@@migrations")

        # The page only reads: nothing upgraded, no form to do it.
        assert browser.find_elements(By.CSS_SELECTOR, "#kotti-migrate-migrations form") == []

    assert "kotti_notes:alembic is at a1b2c3d4e5f6" in log.read_text()  # start-up's warning
    assert versions(db_url, "kotti_notes_alembic_version") == [NOTES_FIRST]
