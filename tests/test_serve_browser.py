"""The page at / in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium): type a
prompt, press Generate, wait for the images and decode them; a bad input shows its error in the page.

.ci/run installs chromium; elsewhere the test is skipped when the browser is missing (in CI it fails instead).
"""

import base64
import io
import os
import shutil
import socket
import threading
import time

import httpx
import pytest

pytest.importorskip("fastapi")
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)) and not os.environ.get("CI"):
    pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True)

import uvicorn
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from proxt2i.serve import create_app


@pytest.fixture(scope="module")
def server():
    """uvicorn on 127.0.0.1, on a port the OS picked (the socket is bound before the server starts: no race)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app("synthfaces-prox", max_batch=4, max_wait_ms=5), log_level="warning", log_config=None)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(30)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium manager: no telemetry; the driver path is given, so no download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1000,800"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def fill(browser, field, value):
    box = browser.find_element(By.ID, field)
    box.clear()
    box.send_keys(str(value))


def test_the_page_generates_images(server, browser):
    browser.get(server)
    fill(browser, "prompt", "a smiling woman with long red hair")
    fill(browser, "steps", 2)
    fill(browser, "n", 3)
    browser.find_element(By.ID, "generate").click()
    WebDriverWait(browser, 60).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#grid img.result")) == 3)
    for img in browser.find_elements(By.CSS_SELECTOR, "#grid img.result"):
        src = img.get_attribute("src")
        assert src.startswith("data:image/png;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).size == (32, 32)
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 32
    assert "images in" in browser.find_element(By.ID, "status").text and browser.find_element(By.ID, "error").text == ""
    bar = browser.find_element(By.ID, "progress")  # per-step progress, polled while the request ran; full at the end
    assert bar.is_displayed() and bar.get_attribute("value") == bar.get_attribute("max") == "1"
    tracked = httpx.get(f"{server}v1/progress/{bar.get_attribute('data-id')}").json()  # the id the page sent and polled
    assert tracked["state"] == "done" and tracked["step"] == tracked["steps"] > 0


def test_the_page_shows_errors_and_warnings(server, browser):
    browser.get(server)
    fill(browser, "prompt", "a smiling man")
    fill(browser, "steps", 500)  # beyond the server's 50: refused with one line, shown in the page
    browser.find_element(By.ID, "generate").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "error").text)
    assert browser.find_element(By.ID, "error").text == "steps must be in 1..50, got 500"
    assert not browser.find_elements(By.CSS_SELECTOR, "#grid img.result")
    fill(browser, "steps", 1)
    fill(browser, "n", 1)
    fill(browser, "prompt", "a smiling man with a zorblax")
    browser.find_element(By.ID, "generate").click()
    WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#grid img.result"))
    assert "zorblax" in browser.find_element(By.ID, "warning").text and browser.find_element(By.ID, "error").text == ""
    seed = browser.find_element(By.ID, "seed").get_attribute("value")
    browser.find_element(By.ID, "randomise").click()
    assert browser.find_element(By.ID, "seed").get_attribute("value") != seed
