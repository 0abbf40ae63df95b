"""The flags a Chromium gets when Playwright launches it (the benchmarks' bare loop)."""

from __future__ import annotations

import shutil

import psutil
import pytest

from enduro.session import CHROMIUM_FLAGS, LAUNCH_FLAGS

pytestmark = pytest.mark.integration

FEATURES = "--disable-features="


def _features(flags: list[str]) -> list[set[str]]:
    return [set(f.removeprefix(FEATURES).split(",")) for f in flags if f.startswith(FEATURES)]


def test_playwright_keeps_its_own_disabled_features_and_they_hold_ours() -> None:
    # Chromium keeps a switch's last value: with CHROMIUM_FLAGS, ours would replace
    # Playwright's list, and the bare loop would run a browser Playwright never runs
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=list(LAUNCH_FLAGS)
        )
        try:
            main = [
                p.cmdline()
                for p in psutil.Process().children(recursive=True)
                if p.name().startswith("chromium")
                and not any(arg.startswith("--type=") for arg in p.cmdline())
            ]
        finally:
            browser.close()
    assert len(main) == 1, main
    lists = _features(main[0])
    assert len(lists) == 1, lists
    (ours,) = _features(list(CHROMIUM_FLAGS))
    assert ours <= lists[0], (ours, lists[0])
    assert set(LAUNCH_FLAGS) == set(CHROMIUM_FLAGS) - {
        f for f in CHROMIUM_FLAGS if f.startswith(FEATURES)
    }
