"""report.html of a real tiny bench (Stable Diffusion's tiny preset with the lossy step cache, its images
side by side) opened in headless Chromium through Selenium: every figure and image loads, the console
has no error, the summary table holds the cases and sorts on a click; a screenshot is kept in the
test's folder.  Where Chromium or Selenium is missing the test says how to get them (and fails when
$GENACCEL_REQUIRE_BROWSER is set, as CI sets it)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from genaccel.cli import main
from genaccel.plugin.manager import build_registry, make_plugin_manager

sd_plugin = pytest.importorskip("genaccel_stable_diffusion")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--window-size=1400,1000")
HOW = ("headless Chromium and Selenium are needed: apt-get install chromium chromium-driver (Debian's packages), "
       "pip install selenium")


@pytest.fixture
def browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if webdriver is None or not (chromium and driver_path):
        (pytest.fail if os.environ.get("GENACCEL_REQUIRE_BROWSER") else pytest.skip)(HOW)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def report(tmp_path, monkeypatch):
    """A bench of the tiny Stable Diffusion, baseline and deepcache (lossy: PSNR/SSIM), two images each."""
    import genaccel.engine.machine as machine

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(sd_plugin, name="stable-diffusion")
    monkeypatch.setattr("genaccel.cli.app.default_registry", lambda: build_registry(pm))
    monkeypatch.setattr(machine, "_stream_bandwidth", lambda *a: 1e10)
    cfg = tmp_path / "bench.toml"
    cfg.write_text('[defaults]\nsamples = 2\npreset = "tiny"\nwarmup = 0\nrepeat = 2\n\n'
                   '[[cases]]\nworkload = "stable-diffusion/t-i"\nbatch_sizes = [2]\nstacks = [[], ["deepcache"]]\n')
    out = tmp_path / "bench"
    assert main(["bench", str(cfg), "--out", str(out)]) == 0
    return out / "report.html"


def test_report_html_loads_whole_in_chromium(browser, report, tmp_path):
    browser.get(report.resolve().as_uri())
    images = browser.execute_script("return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
    assert len(images) == 4 and all(done and width > 0 for done, width, _ in images), images  # 2 cases × 2 samples
    captions = browser.execute_script("return Array.from(document.querySelectorAll('table.media figcaption'))"
                                      ".map(c => c.textContent)")
    assert captions.count("lossless") == 2 and sum("PSNR" in c and "SSIM" in c for c in captions) == 2, captions
    widths = browser.execute_script("return Array.from(document.querySelectorAll('figure.plot svg'))"
                                    ".map(s => s.getBoundingClientRect().width)")
    assert len(widths) >= 4 and all(w > 100 for w in widths), widths  # speedups, latency, phases, time per step
    summary = browser.find_element("css selector", "table")
    labels = [row.find_elements("tag name", "td")[1].text for row in summary.find_elements("css selector", "tbody tr")]
    assert labels == ["baseline", "deepcache"]
    throughput = summary.find_elements("tag name", "th")[5]
    throughput.click()
    throughput.click()  # descending: the faster first
    first = summary.find_element("css selector", "tbody tr").find_elements("tag name", "td")[1].text
    cases = json.loads(report.with_name("report.json").read_text())["cases"]
    fastest = max(cases, key=lambda c: c["summary"]["throughput_per_s"])["label"]
    assert throughput.get_attribute("aria-sort") == "descending" and first == fastest
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, min(height + 50, 12000))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
