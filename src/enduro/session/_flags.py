"""The flags Chromium starts with, on every backend (see ARCHITECTURE.md, "Browser
backends")."""

from __future__ import annotations

__all__ = ["CHROMIUM_FLAGS", "LAUNCH_FLAGS"]

CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # What an automated browser wants and Playwright's own launch passes (chromedriver
    # passes some): no throttling or backgrounding of the one tab, no back-forward
    # cache kept per navigation, no field trials, extensions or hang monitor. A bare
    # Playwright loop attached to a Chromium started with and without them ran 8-11%
    # faster with them (README, "Both backends").
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-back-forward-cache",
    "--disable-ipc-flooding-protection",
    "--disable-hang-monitor",
    "--disable-field-trial-config",
    "--disable-breakpad",
    "--disable-extensions",
    "--disable-component-extensions-with-background-pages",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--disable-prompt-on-repost",
    "--disable-features=PaintHolding,OptimizationHints,MediaRouter,LensOverlay",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--no-service-autorun",
    "--mute-audio",
    "--hide-scrollbars",
)

LAUNCH_FLAGS = tuple(flag for flag in CHROMIUM_FLAGS if not flag.startswith("--disable-features="))
""":data:`CHROMIUM_FLAGS` for a Chromium that Playwright launches (the benchmarks' bare
loop, a peer): Playwright passes its own ``--disable-features`` list, which holds
ours, and Chromium keeps only a switch's last value (chromedriver merges the two)."""
