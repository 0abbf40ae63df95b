"""Stress results on disk, the terminal summary and the self-contained HTML report."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console

import enduro.report
import enduro.report._results
from enduro.errors import UsageError
from enduro.report import (
    CriterionResult,
    InjectionRecord,
    InjectionStats,
    Integrity,
    Leak,
    SeriesStats,
    StressTestResults,
    SuiteResults,
    Timeline,
    UnexplainedError,
    Verdict,
    error_lines,
    read_results,
    read_suite,
    rebuild,
    render_html,
    terminal_summary,
    write_results,
    write_suite,
)
from enduro.report._status import MESSAGE_CHARS

T0 = 1_735_732_800.0  # 2025-01-01 12:00:00 UTC
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def sample_results(scenario: str = "medium", go: bool = False) -> StressTestResults:
    """A medium scenario 48 of 50 pages done in 40 minutes, with faults, restarts and a leak."""
    duration = 2400.0
    pages_done = [(T0 + i * 48.0, float(i)) for i in range(49)]
    samples = range(0, int(duration), 5)  # one sample every 5 s: 480 points per series
    pss = [(T0 + s, 300.0 + (s % 600) * 0.2) for s in samples]
    mem = [(T0 + s, 55.0 + (s % 600) / 60) for s in samples]
    restarts = [T0 + 600.0, T0 + 1200.0, T0 + 1800.0]
    kinds = ["browser_crash", "network_timeout", "rate_limiting"]
    injections = []
    recoveries = []
    for i in range(12):
        kind = kinds[i % 3]
        at = T0 + 100.0 + i * 180.0
        recovered = None if i == 11 else at + 5.0 + i
        injections.append(
            InjectionRecord(
                id=f"inj-{i:03d}",
                type=kind,
                layer="browser" if kind == "browser_crash" else "site",
                at=at,
                after_pages=int((at - T0) / 48),
                delivered=True,
                detail=f"{kind} #{i}",
                recovered_at=recovered,
            )
        )
        if recovered is not None:
            recoveries.append((recovered, kind, recovered - at))
    injections.append(
        InjectionRecord(id="inj-012", type="browser_crash", layer="browser", at=T0 + 2300.0)
    )
    failed = CriterionResult(
        name="all_pages_done",
        passed=False,
        measured=48,
        limit=50,
        detail="2 pages failed after 5 attempts",
    )
    criteria = [
        failed,
        CriterionResult(name="integrity", passed=True, measured=0, limit=0, detail="0/0/0"),
        CriterionResult(name="error_rate", passed=True, measured=0.04, limit=0.1),
        CriterionResult(
            id="runner_memory_growth",
            name="runner memory growth",
            passed=True,
            judged=False,
            limit=100,
            detail="too few samples past the warm-up",
        ),
    ]
    return StressTestResults(
        scenario=scenario,
        seed=1234,
        started_at=T0,
        ended_at=T0 + duration,
        duration_s=duration,
        time_budget_s=3600.0,
        pages_total=50,
        pages_done=48,
        pages_failed=2,
        success_rate=0.96,
        pages_per_hour=72.0,
        attempts=61,
        errors=13,
        error_rate=13 / 61,
        session_restarts=3,
        relogins=2,
        critical_failures=1,
        critical=["browser_crash inj-011 never recovered"],
        errors_by_category={"browser_crash": 4, "network": 5, "rate_limited": 3, "unknown": 1},
        injections=injections,
        injected_per_type={
            "browser_crash": InjectionStats(
                configured_rate=0.05,
                planned=5,
                delivered=4,
                delivered_rate=4 / 61,
                recovery_p50=12.0,
                recovery_p95=13.7,
                recovery_max=14.0,
                unrecovered=1,
            ),
            "network_timeout": InjectionStats(
                configured_rate=0.05,
                planned=4,
                delivered=4,
                delivered_rate=4 / 61,
                recovery_p50=11.0,
                recovery_p95=14.5,
                recovery_max=15.0,
            ),
            "rate_limiting": InjectionStats(
                configured_rate=0.05,
                planned=4,
                delivered=4,
                delivered_rate=4 / 61,
                recovery_p50=12.0,
                recovery_p95=15.5,
                recovery_max=16.0,
            ),
        },
        unexplained_errors=[
            UnexplainedError(ts=T0 + 1500.0, category="unknown", message=f"row said {XSS}")
        ],
        resources={
            "browser_pss": SeriesStats(unit="MB", count=480, min=300, mean=359.5, max=419, p95=413),
            "mem_percent": SeriesStats(unit="%", count=480, min=55, mean=60, max=65, p95=64.5),
        },
        leak=Leak(browser_pss_mb_per_1000_pages=61.5, r2=0.93, runner_rss_mb_per_1000_pages=0.4),
        timeline=Timeline(
            pages_done=pages_done,
            browser_pss_mb=pss,
            system_mem_percent=mem,
            restarts=restarts,
            injections=[(i.at, i.type) for i in injections if i.delivered],
            recoveries=recoveries,
        ),
        integrity=Integrity(
            mode="truth",
            expected=2400,
            found=2399,
            lost=1,
            duplicated=0,
            corrupted=1,
            examples=[f"match m-0042: name {XSS!r} expected 'Ann'"],
        ),
        verdict=Verdict(
            go=go,
            failed=[] if go else [failed],
            recommendations=[
                "browser PSS grows 61 MB per 1,000 pages: lower restart_every_pages to 40"
            ],
            criteria=criteria,
        ),
    )


# --- results.json ---------------------------------------------------------------


def test_results_round_trip_through_json(tmp_path: Path) -> None:
    results = sample_results()
    path = write_results(results, tmp_path / "new" / "dir")

    assert path == tmp_path / "new" / "dir" / "results.json"
    assert read_results(path.parent) == results
    assert read_results(path) == results
    data = json.loads(path.read_text())
    assert data["timeline"]["recoveries"][0] == [T0 + 105.0, "browser_crash", 5.0]
    assert data["injected_per_type"]["browser_crash"]["unrecovered"] == 1
    unjudged = data["verdict"]["criteria"][-1]  # shown as such, with its id
    assert unjudged["id"] == "runner_memory_growth"
    assert (unjudged["judged"], unjudged["result"]) == (False, "not judged")
    assert [c["result"] for c in data["verdict"]["criteria"][:2]] == ["failed", "passed"]
    assert not list(path.parent.glob(".results.json.*")), "temporary file left behind"


def test_suite_round_trip_through_json(tmp_path: Path) -> None:
    suite = SuiteResults(
        scenarios=[sample_results("light", go=True), sample_results("medium")],
        go=False,
        stopped_at="medium",
        recommendations=["lower restart_every_pages to 40"],
    )
    path = write_suite(suite, tmp_path)

    assert path.name == "suite.json"
    assert read_suite(tmp_path) == suite


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "not found"),
        ("{not json", "is not valid JSON (line 1"),
        ('{"seed": 3}', "is not a stress results file: scenario: Field required"),
        ('{"scenario": "x", "pages_dne": 3}', "pages_dne: Extra inputs are not permitted"),
        ('{"scenario": "x", "integrity": {"mode": "guess"}}', "integrity.mode"),
    ],
)
def test_reading_a_bad_file_is_one_clear_usage_error(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    if content is not None:
        (tmp_path / "results.json").write_text(content)

    with pytest.raises(UsageError) as caught:
        read_results(tmp_path)

    line = caught.value.format_line()
    assert expected in line
    assert str(tmp_path / "results.json") in line
    assert "\n" not in line


def test_the_verdict_defaults_to_no_go() -> None:
    assert StressTestResults(scenario="x").verdict.go is False


# --- terminal summary -----------------------------------------------------------


def _terminal_text(results: StressTestResults | SuiteResults) -> str:
    console = Console(record=True, width=120)
    terminal_summary(results, console)
    return console.export_text()


def test_terminal_summary_shows_the_key_figures() -> None:
    text = _terminal_text(sample_results())

    for expected in [
        "stress scenario medium (seed 1234)",
        "40m 00s of a 1h 00m 00s budget",
        "48 / 50 (2 failed)",
        "96.0%",
        "72.0",  # pages per hour
        "session restarts",
        "re-logins",
        "critical failures",
        "browser_crash inj-011 never recovered",
        "NO-GO — 3 of 4 criteria judged",
        "failed: all_pages_done: 48 (limit 50): 2 pages failed after 5 attempts",
        "runner memory growth: not judged: too few samples past the warm-up",
        "1 lost, 0 duplicated, 1 corrupted of 2,400 records expected",
        "+61.5 MB per 1,000 pages",
        "359.5",  # browser PSS mean
        "13.7s",  # browser_crash recovery p95
        "1 unrecovered of 4 browser crashes",
        "0 unrecovered of 4 network timeouts",
        "lower restart_every_pages to 40",
    ]:
        assert expected in text, expected
    row = next(line for line in text.splitlines() if "network_timeout" in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells == ["network_timeout", "5.0%", "4", "4", "0", "11.0s", "14.5s", "15.0s"]


def test_terminal_summary_prints_go_and_leaves_markup_alone() -> None:
    results = sample_results(go=True)
    results.verdict.recommendations = ["[bold]keep[/bold] restart_every_pages"]

    text = _terminal_text(results)

    assert "NO-GO" not in text
    assert re.search(r"^GO — 3 of 4 criteria judged$", text, re.MULTILINE)
    assert "[bold]keep[/bold] restart_every_pages" in text


def test_terminal_summary_of_a_suite_lists_every_scenario_and_the_verdict() -> None:
    suite = SuiteResults(
        scenarios=[sample_results("light", go=True), sample_results("heavy")],
        go=False,
        stopped_at="heavy",
        recommendations=["add memory"],
    )

    text = _terminal_text(suite)

    assert "stress scenario light" in text
    assert "stress scenario heavy" in text
    assert "NO-GO  validation suite: 2 scenario(s) run, stopped at heavy" in text
    assert "add memory" in text


# --- HTML -----------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects what the tests check: charts and their content, ids, and tag balance."""

    VOID = frozenset(
        ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source")
    )

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []
        self.charts: dict[str, list[str]] = {}  # figure id -> tags inside it
        self.sections: list[str] = []
        self.text: list[str] = []
        self._chart: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if tag == "figure" and found.get("class") == "chart":
            self._chart = str(found["id"])
            self.charts[self._chart] = []
        elif self._chart is not None:
            self.charts[self._chart].append(tag)
        if tag == "section" and found.get("class") == "scenario":
            self.sections.append(str(found["id"]))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if self._chart is not None:
            self.charts[self._chart].append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>")
            return
        self.stack.pop()
        if tag == "figure":
            self._chart = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> tuple[str, _Page]:
    html = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    page.close()
    return html, page


def _assert_self_contained(html: str) -> None:
    assert "http://" not in html
    assert "https://" not in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?!#)[^"'\s>]""", html, re.I), (
        "something is linked"
    )
    assert not re.search(r"<script|<link|@import|url\((?!#)", html, re.I)


def _assert_well_formed(page: _Page) -> None:
    assert page.problems == []
    assert page.stack == []
    duplicates = {i for i in page.ids if page.ids.count(i) > 1}
    assert duplicates == set()


def test_html_report_is_self_contained_with_four_svg_charts(tmp_path: Path) -> None:
    path = render_html(sample_results(), tmp_path / "report.html")

    html, page = _parse(path)
    _assert_self_contained(html)
    _assert_well_formed(page)
    assert list(page.charts) == ["chart-pages", "chart-memory", "chart-faults", "chart-recovery"]
    for chart_id, tags in page.charts.items():
        assert "svg" in tags, chart_id
        assert tags.count("path") + tags.count("use") > 10, f"{chart_id} draws nothing"
    assert html.startswith("<!DOCTYPE html>")
    assert "<?xml" not in html
    assert "<!DOCTYPE svg" not in html


def test_html_report_shows_the_verdict_and_tables(tmp_path: Path) -> None:
    html, page = _parse(render_html(sample_results(), tmp_path / "report.html"))
    text = " ".join(" ".join(page.text).split())

    assert 'class="banner nogo verdict"' in html
    assert "NO-GO — 3 of 4 criteria judged failed: all_pages_done" in text
    assert "all_pages_done FAILED 48 50 2 pages failed after 5 attempts" in text
    assert "integrity passed 0 0 0/0/0" in text
    # a criterion with too little to judge by says so, not "passed"
    assert "runner memory growth not judged - 100 too few samples past the warm-up" in text
    assert 'class="unjudged"' in html
    assert "browser_crash 5.0% 5 4 6.6% 1 12.0s 13.7s 14.0s" in text
    assert "Every injection (13)" in text
    assert "network 5" in text  # errors by category
    assert "1 lost, 0 duplicated, 1 corrupted of 2,400 records expected" in text
    assert "0 unrecovered of 4 network timeouts: at 95% confidence fewer than 52.7%" in text
    assert "lower restart_every_pages to 40" in text
    assert "+61.5 MB per 1,000 pages" in text


def test_html_report_escapes_text_from_the_results(tmp_path: Path) -> None:
    results = sample_results(scenario=f"light {XSS}")
    results.injected_per_type[XSS] = InjectionStats(planned=1, delivered=1)
    results.timeline.injections.append((T0 + 50.0, XSS))
    results.timeline.recoveries.append((T0 + 60.0, f"{XSS} $x", 10.0))

    html = render_html(results, tmp_path / "report.html").read_text()

    assert "<script" not in html
    # the unexplained error, the integrity example, the scenario name (title, heading) ...
    assert html.count(XSS_ESCAPED) >= 5
    assert f"row said {XSS_ESCAPED}" in html
    assert f"name &#39;{XSS_ESCAPED}&#39; expected" in html


def test_html_report_of_empty_results_still_has_four_charts(tmp_path: Path) -> None:
    html, page = _parse(render_html(StressTestResults(scenario="empty"), tmp_path / "r.html"))

    _assert_self_contained(html)
    _assert_well_formed(page)
    assert len(page.charts) == 4
    assert all("svg" in tags for tags in page.charts.values())
    for message in ["no pages completed", "no resource samples", "no faults injected"]:
        assert f"<!-- {message} -->" in html
    assert "No faults were delivered, so no statement can be made." in html


def test_html_report_copes_with_a_single_point_per_series(tmp_path: Path) -> None:
    results = StressTestResults(
        scenario="one",
        timeline=Timeline(
            pages_done=[(T0, 1.0)],
            browser_pss_mb=[(T0, 300.0)],
            restarts=[T0],
            recoveries=[(T0, "browser_crash", 2.0)],
        ),
    )

    _, page = _parse(render_html(results, tmp_path / "r.html"))

    assert len(page.charts) == 4


def test_html_report_is_the_same_for_the_same_results(tmp_path: Path) -> None:
    first = render_html(sample_results(), tmp_path / "a.html").read_text()
    second = render_html(sample_results(), tmp_path / "b.html").read_text()

    assert first == second


def test_suite_report_has_one_section_per_scenario(tmp_path: Path) -> None:
    suite = SuiteResults(
        scenarios=[sample_results("light", go=True), sample_results("medium", go=True)],
        go=True,
        recommendations=["ready for production"],
    )

    html, page = _parse(render_html(suite, tmp_path / "report.html"))

    _assert_self_contained(html)
    _assert_well_formed(page)  # includes: no id repeats across the scenarios' charts
    assert page.sections == ["scenario-1", "scenario-2"]
    assert len(page.charts) == 8
    assert "chart-pages-2" in page.charts
    assert 'class="banner go" id="suite-verdict"' in html
    assert "Scenario light" in html
    assert "Scenario medium" in html
    assert "ready for production" in html


# --- rebuild --------------------------------------------------------------------


def test_rebuild_writes_report_html_from_results_json(tmp_path: Path) -> None:
    write_results(sample_results(scenario="rebuilt"), tmp_path)

    path = rebuild(tmp_path)

    assert path == tmp_path / "report.html"
    assert "Scenario rebuilt" in path.read_text()


def test_rebuild_prefers_suite_json_and_takes_another_target(tmp_path: Path) -> None:
    write_results(sample_results(scenario="last"), tmp_path)
    write_suite(SuiteResults(scenarios=[sample_results("light")], go=False), tmp_path)

    path = rebuild(tmp_path, tmp_path / "out" / "suite.html")

    assert path == tmp_path / "out" / "suite.html"
    html = path.read_text()
    assert "enduro validation suite report" in html
    assert "Scenario light" in html


def test_rebuild_of_a_directory_without_results_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"results\.json not found"):
        rebuild(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_rebuild_takes_the_results_file_itself(tmp_path: Path) -> None:
    path = write_results(sample_results(scenario="from-file"), tmp_path)

    assert rebuild(path) == tmp_path / "report.html"
    assert "Scenario from-file" in (tmp_path / "report.html").read_text()


# --- exports --------------------------------------------------------------------


@pytest.mark.parametrize("module", [enduro.report, enduro.report._results])
def test_all_lists_the_names_the_module_defines(module: ModuleType) -> None:
    """Like tests/test_exported_members.py, for the report and the results modules."""
    own = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and getattr(value, "__module__", module.__name__).startswith(module.__name__)
    }
    assert sorted(module.__all__) == sorted(own - {"annotations"})


def test_error_lines_cut_a_long_message_and_name_an_example_page() -> None:
    long = "MaxRetryError: " + "x" * 300
    lines = error_lines(
        {
            "network": {"message": "reset", "count": 2, "page": None, "errors": 3},
            "driver_dead": {"message": long, "count": 1, "page": "22", "errors": 1},
        }
    )
    assert lines == [
        f"driver_dead: {long[: MESSAGE_CHARS - 1]}… (1 of 1, e.g. page 22)",
        "network: reset (2 of 3)",
    ]
