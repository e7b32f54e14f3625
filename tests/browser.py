"""A real headless browser for the report tests: Debian's Chromium, driven by selenium.

Selenium (pure Python, in the ``test`` extra) talks to Debian's ``chromedriver``, which
matches Debian's ``chromium`` by construction; no driver is downloaded (the paths are
given, so Selenium Manager is not asked). The browser runs headless with a fresh profile and
no background traffic, with the network closed twice over: every host resolves to nothing
and goes through a proxy that does not exist, and DevTools blocks http(s) and ws(s) URLs. A
browser for a served page (``loopback=True``) reaches http://127.0.0.1, nothing else.
What the page still tried to fetch shows in the performance log, which
:func:`requests_made` reads.

Without ``/usr/bin/chromium`` the tests FAIL (``scripts/browser/install.sh`` installs it),
unless ``HPSEARCH_SKIP_BROWSER=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-unsafe-swiftshader",  # WebGL (parallel coordinates) in software
         "--proxy-server=127.0.0.1:9", "--hide-scrollbars")
#: every host resolves to nothing (with ``loopback``: every host but 127.0.0.1)
NO_HOSTS = "--host-resolver-rules=MAP * ~NOTFOUND"
#: what DevTools blocks (with ``loopback``: http stays open, for 127.0.0.1 only: the proxy
#: that does not exist takes every other host, Chromium never proxies loopback)
BLOCKED = ["http://*", "https://*", "ws://*", "wss://*"]
#: URL schemes a page that works offline may load from
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:")


def require_browser() -> None:
    """Fail (or skip, with HPSEARCH_SKIP_BROWSER=1) when Chromium is not installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if not missing:
        return
    if os.environ.get("HPSEARCH_SKIP_BROWSER") == "1":
        pytest.skip("HPSEARCH_SKIP_BROWSER=1 and no browser")
    pytest.fail(f"{', '.join(missing)} missing: run scripts/browser/install.sh (root), or set "
                "HPSEARCH_SKIP_BROWSER=1 to skip the browser tests")


def open_browser(profile: Path, width: int = 1280, height: int = 1000,
                 loopback: bool = False) -> Any:
    """A headless Chromium with a fresh profile in ``profile``; ``loopback``: it can open
    http://127.0.0.1 (a served report)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, NO_HOSTS + (", EXCLUDE 127.0.0.1" if loopback else "")):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {
        "urls": BLOCKED[1:] if loopback else BLOCKED})
    return driver


def load_report(driver: Any, path: Path, timeout: float = 120) -> str:
    """Open the report and wait until its script says it drew everything; returns that
    word ("ok", or "errors")."""
    driver.get(path.resolve().as_uri())
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        state = driver.execute_script("return document.body.dataset.rendered")
        if state and state != "no":
            return state
        time.sleep(0.1)
    raise AssertionError(f"the report {path} did not finish drawing in {timeout} s")


def console_errors(driver: Any) -> list[str]:
    """What the page logged at level SEVERE (JavaScript errors among it)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def requests_made(driver: Any) -> list[str]:
    """Every URL the page asked for, from the DevTools performance log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    urls += driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    return urls


def screenshot(driver: Any, path: Path, height: int | None = None) -> Path:
    """A PNG of the page, ``height`` pixels tall (default: the whole page)."""
    full = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.execute_script("return window.innerWidth")
    driver.set_window_size(width, min(full, height) if height else full)
    time.sleep(0.5)  # responsive plots redraw at the new size
    driver.save_screenshot(str(path))
    return path
