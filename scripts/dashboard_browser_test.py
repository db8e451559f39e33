#!/usr/bin/env python3
"""Drives the hub's dashboard in headless Chromium with selenium, as a person would; `BrowserTests` (Swift)
runs it against a hub it starts and prepares (labels, accepted photos, one near duplicate in quarantine).

usage: dashboard_browser_test.py BASE_URL ADMIN_KEY SUPPLIER_KEY SCREENSHOT_DIR PHOTO...
       dashboard_browser_test.py --train BASE_URL TRAINER_KEY SCREENSHOT_DIR LABEL LABEL

Exits 0 when every check holds; otherwise prints the one that failed and exits 1. Each page visited is
saved as a PNG in SCREENSHOT_DIR.
"""
import json
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# htmx swaps parts of a page while a wait looks at them: an element found a moment ago may be gone when
# its attribute is read. A wait looks again instead of failing.
STALE = (StaleElementReferenceException,)


def check(condition, message):
    if not condition:
        print(f"dashboard_browser_test: FAILED: {message}", flush=True)
        sys.exit(1)
    print(f"dashboard_browser_test: ok: {message}", flush=True)


def browser():
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)


def sign_in(driver, wait, base, key):
    driver.get(base + "/")
    wait.until(lambda d: d.current_url.endswith("/login"))
    field = driver.find_element(By.NAME, "key")
    field.send_keys(key)
    field.submit()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Overview")


def train(base, trainer, shots, labels):
    """A trainer picks two labels on the Training page and asks for the last block to be fine-tuned, follows
    the job live, reads the report and fetches the ONNX model; the Models page lists it."""
    driver = browser()
    wait = WebDriverWait(driver, 90, ignored_exceptions=STALE)
    try:
        sign_in(driver, wait, base, trainer)
        check(driver.find_elements(By.LINK_TEXT, "Review") == [] and driver.find_elements(By.LINK_TEXT, "Training") != [],
              "a trainer has Training and no Review")
        driver.get(base + "/training")
        for label in labels:
            driver.find_element(By.CSS_SELECTOR, f"input[name=label][value='{label}']").click()
        driver.find_element(By.CSS_SELECTOR, "input[name=fine_tune]").click()
        driver.save_screenshot(os.path.join(shots, "training.png"))
        driver.find_element(By.XPATH, "//button[normalize-space()='Train']").click()
        wait.until(lambda d: "/training/" in d.current_url)
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".state").text in ("succeeded", "failed"))
        check(driver.find_element(By.CSS_SELECTOR, ".state").text == "succeeded", "the job's page follows it to the end by itself")
        accuracy = float(driver.find_element(By.CSS_SELECTOR, ".accuracy").text)
        check(accuracy >= 0.9, f"the report shows the validation accuracy ({accuracy})")
        tuning = driver.find_element(By.CSS_SELECTOR, ".fine-tuning").text
        check("linear head alone scored" in tuning, f"the fine-tuning asked for says how it compares with a linear head ({tuning!r})")
        wait.until(lambda d: d.execute_script("const i = document.querySelector('img.report'); return i && i.complete && i.naturalWidth > 0"))
        check(True, "the report's learning curves and confusion matrix load")
        driver.save_screenshot(os.path.join(shots, "training-report.png"))
        href = driver.find_element(By.CSS_SELECTOR, "a.onnx").get_attribute("href")
        size = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.ok ? r.arrayBuffer() : null)"
            ".then(b => done(b ? b.byteLength : 0), e => done(0));", href)
        check(size > 1_000_000, f"the ONNX model downloads ({size} bytes)")
        driver.get(base + "/models")
        check(driver.find_elements(By.LINK_TEXT, "ONNX") != [], "the Models page lists the model")
        driver.save_screenshot(os.path.join(shots, "models.png"))
    except TimeoutException as error:
        driver.save_screenshot(os.path.join(shots, "timeout.png"))
        check(False, f"timed out on {driver.current_url}: {error.msg or 'a condition never held'}")
    finally:
        driver.quit()


def relabel(base, admin, shots):
    """An admin relabels, with the keyboard, a photo uploaded under the wrong label: the Review page has
    chosen the label it looks like beside it."""
    driver = browser()
    wait = WebDriverWait(driver, 20, ignored_exceptions=STALE)
    try:
        sign_in(driver, wait, base, admin)
        driver.get(base + "/review")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-review]"))
        items = [i for i in driver.find_elements(By.CSS_SELECTOR, "[data-review]")
                 if "label.mismatch" in i.find_element(By.CSS_SELECTOR, ".reasons").text]
        check(len(items) == 1, "the photo waits for review as label.mismatch")
        action = items[0].find_element(By.CSS_SELECTOR, "form.decide").get_attribute("action")
        driver.execute_script("arguments[0].focus(); arguments[0].scrollIntoView();", items[0])
        driver.save_screenshot(os.path.join(shots, "review-mismatch.png"))
        ActionChains(driver).send_keys("j").send_keys("k").perform()
        moved = driver.execute_script("return document.activeElement.hasAttribute('data-review')")
        check(moved, "j and k move between the images waiting")
        driver.execute_script("arguments[0].focus();", items[0])
        ActionChains(driver).send_keys("l").perform()
        wait.until(lambda d: all(f.get_attribute("action") != action for f in d.find_elements(By.CSS_SELECTOR, "form.decide")))
        check(True, "the key l relabels it as the label named beside it")
    except TimeoutException as error:
        driver.save_screenshot(os.path.join(shots, "timeout.png"))
        check(False, f"timed out on {driver.current_url}: {error.msg or 'a condition never held'}")
    finally:
        driver.quit()


def main():
    if sys.argv[1] == "--relabel":
        base, admin, shots = sys.argv[2:5]
        os.makedirs(shots, exist_ok=True)
        relabel(base, admin, shots)
        return
    if sys.argv[1] == "--train":
        base, trainer, shots = sys.argv[2:5]
        os.makedirs(shots, exist_ok=True)
        train(base, trainer, shots, sys.argv[5:])
        return
    base, admin, supplier, shots = sys.argv[1:5]
    photos = sys.argv[5:]
    os.makedirs(shots, exist_ok=True)
    driver = browser()
    wait = WebDriverWait(driver, 20, ignored_exceptions=STALE)

    def shot(name):
        driver.save_screenshot(os.path.join(shots, f"{name}.png"))

    try:
        sign_in(driver, wait, base, admin)
        check(driver.current_url.rstrip("/") == base, "an admin's key signs in and lands on the Overview")
        check("accepted" in driver.find_element(By.CSS_SELECTOR, ".figures").text, "the Overview counts images by status")
        shot("overview")

        driver.get(base + "/labels")
        shot("labels")
        check(driver.find_elements(By.LINK_TEXT, "<script>alert(1)</script>") != [],
              "a label named <script>alert(1)</script> shows as text")
        try:
            driver.switch_to.alert
            check(False, "no script of a label's name runs")
        except NoAlertPresentException:
            check(True, "no script of a label's name runs")

        driver.find_element(By.LINK_TEXT, "Banana").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".grid img"))
        loaded = wait.until(lambda d: d.execute_script(
            "const imgs = [...document.querySelectorAll('.grid img')];"
            "return imgs.length > 0 && imgs.every(i => i.complete) ? imgs.filter(i => i.naturalWidth > 0).length : false;"))
        count = len(driver.find_elements(By.CSS_SELECTOR, ".grid img"))
        check(loaded == count, f"a label's thumbnails load with the session cookie ({loaded} of {count})")
        shot("label")

        driver.get(base + "/batches")
        check(driver.find_elements(By.CSS_SELECTOR, "svg.places circle") != [], "Batches plots where photos were taken")
        shot("batches")

        driver.get(base + "/review")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-review]"))
        shot("review")
        focused = driver.execute_script("return document.activeElement.hasAttribute('data-review')")
        check(focused, "the first quarantined image has the keyboard focus")
        ActionChains(driver).send_keys("r").perform()
        wait.until(lambda d: "Nothing waits for review." in d.page_source)
        check(True, "the key r rejects the image in focus")
        shot("review-done")

        token = driver.find_element(By.NAME, "csrf").get_attribute("value")
        fetch = ("const [token, done] = [arguments[0], arguments[arguments.length - 1]];"
                 "const headers = {'Content-Type': 'application/json'}; if (token) headers['X-CSRF-Token'] = token;"
                 "fetch('/v1/labels', {method: 'POST', headers, body: JSON.stringify({name: token ? 'Cherry' : 'Plum'})})"
                 ".then(r => done(r.status), e => done(String(e)));")
        check(driver.execute_async_script(fetch, "") == 403, "a page's API write without the CSRF token is refused (403)")
        check(driver.execute_async_script(fetch, token) == 201, "with the session's token it is made (201)")

        driver.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
        wait.until(lambda d: d.current_url.endswith("/login"))
        check(True, "sign out ends the session")
        driver.get(base + "/")
        check(driver.current_url.endswith("/login"), "after signing out the dashboard asks to sign in again")

        sign_in(driver, wait, base, supplier)
        check(driver.find_elements(By.LINK_TEXT, "Review") == [], "a supplier's session has no Review")
        shot("supplier")
        driver.get(base + "/review")
        check("Not allowed" in driver.page_source, "a supplier opening /review is refused")

        driver.get(base + "/upload")
        driver.find_element(By.CSS_SELECTOR, "#label option[value='Banana']").click()
        driver.find_element(By.ID, "files").send_keys("\n".join(photos))
        driver.find_element(By.XPATH, "//button[normalize-space()='Upload']").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".uploads tbody tr")) == len(photos))
        verdicts = wait.until(lambda d: [c.text for c in d.find_elements(By.CSS_SELECTOR, ".uploads tbody tr td:last-child")]
                              if all(c.text.startswith(("accepted", "quarantined", "rejected", "refused"))
                                     for c in d.find_elements(By.CSS_SELECTOR, ".uploads tbody tr td:last-child")) else False)
        shot("upload")
        check(all(v.startswith("accepted") for v in verdicts), f"photos uploaded from the Upload page get their verdicts: {verdicts}")
    except TimeoutException as error:
        shot("timeout")
        check(False, f"timed out on {driver.current_url}: {error.msg or 'a condition never held'}")
    finally:
        driver.quit()
    print(json.dumps({"screenshots": sorted(os.listdir(shots))}))


if __name__ == "__main__":
    main()
