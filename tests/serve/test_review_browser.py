"""The review page in a real browser: Debian's Chromium, headless, driven by Selenium.

The server runs the real app with uvicorn on a free loopback port in a thread; the analyst opens
the queue, filters it by attribute, opens a product, accepts a value with the keyboard, rejects
another with the mouse, and the store is checked afterwards. With ``KGMM_WRITE_SCREENSHOT=1`` the
product page is saved as docs/review-page.png (the README's picture), so CI never dirties the tree.

No browser: skipped, unless ``KGMM_REQUIRE_BROWSER=1`` (CI), where that fails the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from graph_store import GraphStore, open_store
from tests.review_data import TAWA, build_review_store

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "review-page.png"


def browser_unavailable(reason: str) -> None:
    if os.environ.get("KGMM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"KGMM_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    graph = open_store(str(tmp_path_factory.mktemp("browser") / "g.db"), create=True)
    build_review_store(graph)
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def server(store: GraphStore) -> Iterator[str]:
    """``http://127.0.0.1:PORT``: the review app served by uvicorn in a thread."""
    import uvicorn

    from kgmm.serve import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(store, reviewer="selenium"), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the review server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through chromedriver, both from the system (nothing downloaded)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        browser_unavailable("selenium is not installed (pip install -e '.[test]')")
    binary = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        browser_unavailable("no chromium and chromedriver (apt-get install chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1100",
                 "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    except Exception as err:  # noqa: BLE001 - any failure to start is "no usable browser"
        browser_unavailable(f"chromium did not start: {str(err).splitlines()[0]}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait_until_said(browser, word: str) -> None:
    """The page's ``#said`` line reports ``word``. It is rewritten when the decision's request
    returns, so it is read again until then (a read can meet the element being replaced)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: word in b.find_element(By.ID, "said").text, f"the page never said {word!r}")


def _click_and_wait_for_page(browser, element, url_part: str) -> None:
    """Click ``element`` (a link or a form's submit) and wait until the next page has loaded.

    A click that navigates returns before the new page exists; reading elements at once can meet
    the old page's elements as the browser replaces them (a stale element, seen in CI). So the
    wait is for the old page's ``<html>`` to go stale and the new URL to carry ``url_part``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    old_page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    wait = WebDriverWait(browser, 30)
    wait.until(EC.staleness_of(old_page), "the click never left the page")
    wait.until(lambda b: url_part in b.current_url and b.execute_script("return document.readyState") == "complete",
               f"the next page ({url_part!r}) never finished loading")


def test_an_analyst_filters_opens_accepts_and_rejects(store: GraphStore, server: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(server + "/")
    assert browser.find_elements(By.CSS_SELECTOR, "tr.queue-row"), "the queue lists products"
    left = int(browser.find_element(By.ID, "open-total").text)

    Select(browser.find_element(By.ID, "filter-attribute")).select_by_value("material")
    _click_and_wait_for_page(browser, browser.find_element(By.ID, "apply-filters"), "attribute=material")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.queue-row")
    with_material = {p.product_id for p in store.iter_triples(["model"]) if p.attribute == "material"}
    assert rows and {row.get_attribute("data-product") for row in rows} <= with_material

    _click_and_wait_for_page(browser, rows[0].find_element(By.CSS_SELECTOR, "a.product-link"), "/product/")
    assert browser.find_element(By.ID, "photo").get_attribute("naturalWidth") not in (None, "0"), "the photo loaded"
    card = browser.find_element(By.CSS_SELECTOR, ".card.current")
    pid = browser.current_url.split("/product/")[1].split("?")[0]
    accepted = (card.get_attribute("data-attribute"), card.get_attribute("data-value"))
    assert accepted[0] == "material", "the filter's attribute comes first"
    if os.environ.get("KGMM_WRITE_SCREENSHOT") == "1":
        browser.set_window_size(1280, 1450)  # tall enough for the evidence's photos
        browser.get(f"{server}/product/{TAWA}")  # the suspect value's page shows every part at once
        browser.save_screenshot(str(SCREENSHOT))
        browser.set_window_size(1280, 1100)
        browser.back()

    browser.find_element(By.TAG_NAME, "body").send_keys("a")  # the keyboard shortcut
    _wait_until_said(browser, "accept")
    second = browser.find_element(By.CSS_SELECTOR, ".card.current")
    rejected = (second.get_attribute("data-attribute"), second.get_attribute("data-value"))
    second.find_element(By.CSS_SELECTOR, "button[data-action=reject]").click()
    _wait_until_said(browser, "reject")

    decisions = [(r.decision, r.attribute, r.value, r.reviewer) for r in store.reviews([pid])]
    assert decisions == [("accept", *accepted, "selenium"), ("reject", *rejected, "selenium")]
    facts = {(e.attribute, e.value, e.source) for e in store.get_product(pid).edges}
    assert (*accepted, "reviewed") in facts and not any(e[:2] == rejected for e in facts)
    browser.get(server + "/")
    assert int(browser.find_element(By.ID, "open-total").text) == left - 2
