#!/usr/bin/python3
"""qnetctl ui in a real browser (headless Chromium through Selenium).

Starts a 3-node chain of daemons with `qnetctl up`, serves its page with
`qnetctl ui`, and checks what a user sees: three nodes and two links; the
API refuses a request without the page's token; an entangle request started
from the page's form raises the link rates shown; an eavesdropper set from
the page turns its link red, and a QKD session started from the page over it
aborts and leaves the link's QBER (about 25%) on it; a daemon killed with
SIGKILL turns its node red within 5 s. Screenshots go to ARTIFACTS_DIR.

Usage: ui_browser_mptest.py QNETCTL ARTIFACTS_DIR
Exit 77 (ctest: skipped) when Chromium, chromedriver or Selenium is absent.
"""
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77
CHAIN = """network: uichain
nodes:
  - {name: n0, hardware: ideal}
  - {name: n1, hardware: ideal, qubits: 4}
  - {name: n2, hardware: ideal}
links:
  - {between: [n0, n1], length_km: 1}
  - {between: [n1, n2], length_km: 1}
"""


def wait_until(what, check, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # the page may be mid-render
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def main():
    qnetctl, artifacts = sys.argv[1], sys.argv[2]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select
    except ImportError:
        print("SKIP: python3-selenium is absent (./qnet test installs it)")
        return SKIP
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(tool):
            print(f"SKIP: {tool} is absent (Debian's chromium and chromium-driver; ./qnet test installs them)")
            return SKIP
    os.makedirs(artifacts, exist_ok=True)
    work = tempfile.mkdtemp(prefix="qnet-ui-test-")
    state = os.path.join(work, "state")
    network_file = os.path.join(work, "uichain.yaml")
    with open(network_file, "w") as f:
        f.write(CHAIN)
    ctl = [qnetctl, "--state-dir", state]
    subprocess.run(ctl + ["up", network_file, "--time-scale", "10"], check=True, timeout=120)
    ui = driver = None
    try:
        ui = subprocess.Popen(ctl + ["ui"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready, _, _ = select.select([ui.stdout], [], [], 20)
        assert ready, "qnetctl ui printed no URL within 20 s"
        line = ui.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=([0-9a-f]{32})", line)
        assert match, f"no URL with a token in: {line!r}"
        base, token = match.group(1), match.group(2)

        # The API without the token, or with a wrong one, is refused.
        for url in (f"{base}/api/state", f"{base}/api/state?token={'0' * 32}", f"{base}/"):
            try:
                urllib.request.urlopen(url, timeout=5)
                raise AssertionError(f"{url} answered without the token")
            except urllib.error.HTTPError as e:
                assert e.code == 403, f"{url}: {e.code}"

        options = Options()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,640", f"--user-data-dir={os.path.join(work, 'chromium')}"):
            options.add_argument(arg)
        options.binary_location = "/usr/bin/chromium"
        # Chromium can fail to start on a loaded machine (DevTools port not
        # ready in time): one more try before the test fails.
        for attempt in (1, 2):
            try:
                driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
                break
            except Exception as e:  # selenium's SessionNotCreatedException and kin
                print(f"starting Chromium, attempt {attempt}: {e}")
                if attempt == 2:
                    raise
        driver.set_page_load_timeout(30)
        driver.get(f"{base}/?token={token}")

        def count(selector):
            return len(driver.find_elements(By.CSS_SELECTOR, selector))

        wait_until("three nodes and two links on the page",
                   lambda: count("#topology .node") == 3 and count("#topology .link") == 2, 20)
        wait_until("every node up", lambda: count("#topology .node.down") == 0, 10)
        driver.save_screenshot(os.path.join(artifacts, "ui-chain.png"))

        # The page redraws its SVG every second, so elements found in one call
        # can be gone in the next: read what is shown in one script instead.
        def link_rates():
            return driver.execute_script(
                "return [...document.querySelectorAll('#topology .link')].map(g => Number(g.dataset.rate));")

        def max_rate():
            return max(link_rates())

        assert max_rate() == 0, f"pairs flow before any request: {max_rate()}"
        Select(driver.find_element(By.ID, "from")).select_by_value("n0")
        Select(driver.find_element(By.ID, "to")).select_by_value("n2")
        pairs = driver.find_element(By.ID, "pairs")
        pairs.clear()
        pairs.send_keys("1000")
        driver.find_element(By.ID, "start").click()
        wait_until("the page to say the request started",
                   lambda: driver.find_element(By.ID, "result").text.startswith("started"), 10)
        wait_until("a link rate above zero", lambda: max_rate() > 0, 30)
        wait_until("both links carrying pairs", lambda: min(link_rates()) > 0, 30)
        print(f"link rates shown: max {max_rate():.1f} pairs/s")
        driver.save_screenshot(os.path.join(artifacts, "ui-rates.png"))

        # An eavesdropper switched on from the page turns its link red; a
        # QKD session started from the page over that link aborts, and the
        # link shows the QBER it was caught with, red even once the
        # eavesdropper is off again (until a clean session replaces it).
        def link_notes(link):
            return driver.execute_script(
                "const t = document.querySelector(`[data-link=\"${arguments[0]}\"] text.notes`);"
                "return t ? t.textContent : '';", link)

        def link_red(link):
            return count(f'#topology .link.eve[data-link="{link}"]') == 1

        # The entangle request holds n0's memory; the key request below needs
        # it too. Under the sanitizers on a loaded machine the daemons move
        # ~15 pairs/s, so the waits are generous (they end as soon as met).
        wait_until("the entangle request to finish", lambda: any(
            "entangle n0" in row.text and "done" in row.text
            for row in driver.find_elements(By.CSS_SELECTOR, "#jobs tr")), 300)
        Select(driver.find_element(By.ID, "eve-link")).select_by_value("n0-n1")
        fraction = driver.find_element(By.ID, "eve-fraction")
        fraction.clear()
        fraction.send_keys("1")
        driver.find_element(By.ID, "eve-set").click()
        wait_until("the page to confirm the eavesdropper",
                   lambda: "eavesdropper on n0-n1 at 1" in driver.find_element(By.ID, "eve-result").text, 10)
        wait_until("link n0-n1 red with its eavesdropper", lambda: link_red("n0-n1")
                   and "eavesdropper 100%" in link_notes("n0-n1"), 5)
        Select(driver.find_element(By.ID, "qkd-from")).select_by_value("n0")
        Select(driver.find_element(By.ID, "qkd-to")).select_by_value("n1")
        for field, value in (("qkd-bits", "64"), ("qkd-block", "2000")):
            box = driver.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        driver.find_element(By.ID, "qkd-start").click()
        wait_until("the page to say the key request started",
                   lambda: driver.find_element(By.ID, "qkd-result").text.startswith("started"), 10)
        wait_until("a QBER on link n0-n1", lambda: "QBER" in link_notes("n0-n1"), 400)
        qber = float(re.search(r"QBER ([0-9.]+)%", link_notes("n0-n1")).group(1))
        print(f"QBER shown on n0-n1 with the eavesdropper: {qber}%")
        # 2000 pairs: ~100 sampled bits, standard error 4.3%: (11, 45) is over 3 sigma each side.
        assert 11 < qber < 45, f"an intercept-resend eavesdropper gives about 25%, the page shows {qber}%"
        wait_until("the key request to end aborted", lambda: any(
            "qkd n0" in row.text and "failed" in row.text
            for row in driver.find_elements(By.CSS_SELECTOR, "#jobs tr")), 60)
        driver.save_screenshot(os.path.join(artifacts, "ui-eavesdropper.png"))
        fraction.clear()
        fraction.send_keys("0")
        driver.find_element(By.ID, "eve-set").click()
        wait_until("the eavesdropper gone from n0-n1", lambda: "eavesdropper" not in link_notes("n0-n1"), 5)
        assert link_red("n0-n1"), "n0-n1's last QBER is above 11%: it should stay red"

        with open(os.path.join(state, "n2.pid")) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_until("node n2 red", lambda: count('#topology .node.down[data-node="n2"]') == 1, 5)
        print(f"n2 shown down {time.monotonic() - killed:.1f} s after SIGKILL")
        fill = driver.execute_script(
            "return getComputedStyle(document.querySelector('[data-node=\"n2\"] circle')).fill")
        assert fill == "rgb(207, 34, 46)", f"n2's circle is {fill}, not red"
        assert count('#topology .link.down[data-link="n1-n2"]') == 1, "the link to the dead node is not marked down"
        driver.save_screenshot(os.path.join(artifacts, "ui-node-down.png"))
        print("all checks passed")
        return 0
    finally:
        if driver is not None:
            driver.quit()
        if ui is not None:
            ui.send_signal(signal.SIGINT)
            try:
                ui.wait(timeout=30)
            except subprocess.TimeoutExpired:
                ui.kill()
        subprocess.run(ctl + ["down"], timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
