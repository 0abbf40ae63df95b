"""Scenarios: the five presets' figures, durations, TOML files, overrides and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from enduro.errors import UsageError
from enduro.stress.scenario import (
    BASIC_FAULTS,
    FAULT_TYPES,
    JOB_FAULTS,
    LENIENT,
    PRESETS,
    PROFILES,
    StressTestConfig,
    SuccessCriteria,
    for_job,
    load_scenario,
    parse_duration,
)

HOUR = 3600.0

# issue 5's table: pages, duration, failure rate, fault types, cycling
TABLE = {
    "light": (10, 15 * 60.0, 0.02, set(BASIC_FAULTS), False),
    "medium": (50, HOUR, 0.05, {*BASIC_FAULTS, "memory_pressure"}, False),
    "heavy": (100, 2 * HOUR, 0.08, {*BASIC_FAULTS, "memory_pressure", "network_timeout"}, False),
    "production": (724, 20 * HOUR, 0.03, set(FAULT_TYPES) - {"database_restart"}, False),
    "endurance": (200, 8 * HOUR, 0.05, {*BASIC_FAULTS, "memory_pressure"}, True),
    # issue 12: runners sharing a PostgreSQL store, crashed, the database restarted
    "fleet": (120, HOUR, 0.05, {*BASIC_FAULTS, "runner_crash", "database_restart"}, False),
}
RUNNERS = {"fleet": 3}


def _write(tmp_path: Path, text: str, name: str = "scenario.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _usage(ref: str, **overrides: object) -> str:
    with pytest.raises(UsageError) as caught:
        load_scenario(ref, **overrides)
    line = caught.value.format_line()
    assert "\n" not in line
    return line


# --- presets ------------------------------------------------------------------


def test_the_presets_are_exactly_the_six_of_the_table() -> None:
    assert list(PRESETS) == list(TABLE)


@pytest.mark.parametrize("name", list(TABLE))
def test_preset_figures(name: str) -> None:
    pages, duration, rate, faults, cycle = TABLE[name]
    config = PRESETS[name]

    assert config.name == name
    assert config.pages == pages
    assert config.duration == duration
    assert config.failure_rate == rate
    assert set(config.faults) == faults
    assert len(config.faults) == len(faults)
    assert config.cycle is cycle
    assert config.runners == RUNNERS.get(name, 1)
    assert config.shared_store is (name == "fleet")  # only the fleet needs PostgreSQL
    assert config.criteria == SuccessCriteria()
    assert load_scenario(name) == config


def test_runners_are_one_to_eight_and_a_database_restart_means_a_shared_store(
    tmp_path: Path,
) -> None:
    base = 'pages = 20\nduration = "10m"\nfailure_rate = 0.1\n'
    one = load_scenario(_write(tmp_path, base + 'faults = ["database_restart"]\n'))
    assert one.runners == 1 and one.shared_store
    assert not load_scenario("light").shared_store
    assert load_scenario("light", runners=2).shared_store
    for bad in (0, 9):
        line = _usage("light", runners=bad)
        assert "runners" in line, line


def test_basic_faults() -> None:
    assert set(BASIC_FAULTS) == {
        "browser_crash",
        "driver_crash",
        "tab_crash",
        "element_not_found",
        "javascript_error",
        "rate_limiting",
        "auth_loss",
        "server_error",
    }


@pytest.mark.parametrize("name", list(TABLE))
def test_every_named_fault_is_injected_at_least_once(name: str) -> None:
    config = PRESETS[name]
    counts = config.injection_counts()

    assert set(counts) == set(config.faults)
    assert all(counts[fault] >= 1 for fault in config.faults)


def test_light_injects_each_type_once_although_its_rate_alone_gives_none() -> None:
    light = PRESETS["light"]
    assert light.failure_rate * light.pages / len(light.faults) < 0.5

    assert light.injection_counts() == dict.fromkeys(light.faults, 1)


def test_production_minimums() -> None:
    production = PRESETS["production"]
    assert production.min_injections == {"runner_crash": 3, "browser_crash": 5}

    counts = production.injection_counts()
    assert counts["runner_crash"] == 3
    assert counts["browser_crash"] == 5
    # 724 pages x 3% spread over 12 types: round(1.81) each where no minimum is higher
    assert counts["cookie_wipe"] == 2
    assert production.minimum("cookie_wipe") == 1


def test_counts_follow_rate_and_weights() -> None:
    config = StressTestConfig(
        name="w",
        pages=1000,
        duration=60,
        failure_rate=0.1,
        faults=("browser_crash", "tab_crash"),
        weights={"browser_crash": 3},
        min_injections={"tab_crash": 0},
    )
    # 100 faults: 3/4 browser crashes, 1/4 tab crashes
    assert config.injection_counts() == {"browser_crash": 75, "tab_crash": 25}

    none = config.model_copy(update={"failure_rate": 0.0})
    assert none.injection_counts() == {"browser_crash": 1, "tab_crash": 0}


# --- criteria -----------------------------------------------------------------


def test_default_criteria_are_strict() -> None:
    strict = SuccessCriteria()
    assert strict.min_completion == 1.0
    assert (strict.max_lost, strict.max_duplicated, strict.max_corrupted) == (0, 0, 0)
    assert strict.max_critical_failures == 0
    assert strict.max_error_rate == 0.25
    assert strict.min_sample == 50
    assert strict.max_leak_mb_per_1000_pages == 100.0
    assert strict.max_recovery_p95 == dict.fromkeys(FAULT_TYPES, 60.0)
    assert (strict.stop_error_rate, strict.stop_critical_failures) == (0.5, 3)
    assert strict.stop_memory_percent == 97.0
    assert PROFILES["strict"] == strict


def test_lenient_is_the_classic_bar() -> None:
    assert PROFILES["lenient"] is LENIENT
    assert LENIENT.min_completion == 0.8
    assert LENIENT.max_critical_failures == 0
    assert LENIENT.max_error_rate == 0.5
    assert (LENIENT.max_lost, LENIENT.max_duplicated, LENIENT.max_corrupted) == (None,) * 3
    assert LENIENT.max_leak_mb_per_1000_pages is None
    assert LENIENT.max_recovery_p95 is None


def test_recovery_limits_name_known_types_and_keep_the_others() -> None:
    criteria = SuccessCriteria(max_recovery_p95={"browser_crash": 30})
    assert criteria.max_recovery_p95 is not None
    assert criteria.max_recovery_p95["browser_crash"] == 30
    assert criteria.max_recovery_p95["runner_crash"] == 60

    with pytest.raises(ValidationError, match="unknown fault type 'teleport'"):
        SuccessCriteria(max_recovery_p95={"teleport": 5})


def test_configs_are_frozen() -> None:
    with pytest.raises(ValidationError):
        PRESETS["light"].pages = 3  # type: ignore[misc]


# --- durations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900.0),
        ("1h", 3600.0),
        ("90s", 90.0),
        ("2h30m", 9000.0),
        ("2h 30m 15s", 9015.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        ("900", 900.0),
        (" 12.5 ", 12.5),
        ("10M", 600.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "30m2h", "1h1h", "-5m", "0", "0s", "nan", "inf"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_duration_accepts_numbers_and_spans() -> None:
    base = PRESETS["light"].model_dump()
    assert StressTestConfig.model_validate({**base, "duration": 42}).duration == 42.0
    assert StressTestConfig.model_validate({**base, "duration": "2h30m"}).duration == 9000.0


# --- TOML files -------------------------------------------------------------------


def test_toml_preset_with_overrides_criteria_and_profile(tmp_path: Path) -> None:
    ref = _write(
        tmp_path,
        """
preset = "heavy"
pages = 30
duration = "30m"
pace = 0.5
profile = "lenient"

[min_injections]
browser_crash = 4

[criteria]
max_error_rate = 0.3
min_sample = 10

[criteria.max_recovery_p95]
browser_crash = 30
""",
        name="rehearsal.toml",
    )
    config = load_scenario(ref)

    assert config.name == "rehearsal"
    assert config.pages == 30
    assert config.duration == 1800.0
    assert config.pace == 0.5
    assert config.failure_rate == PRESETS["heavy"].failure_rate
    assert config.faults == PRESETS["heavy"].faults
    assert config.min_injections == {"browser_crash": 4}
    assert config.injection_counts()["browser_crash"] == 4
    criteria = config.criteria
    assert criteria.min_completion == LENIENT.min_completion  # from the profile
    assert criteria.max_lost is None
    assert criteria.max_error_rate == 0.3  # from [criteria]
    assert criteria.min_sample == 10
    assert criteria.max_recovery_p95 is not None
    assert criteria.max_recovery_p95["browser_crash"] == 30
    assert criteria.max_recovery_p95["tab_crash"] == 60


def test_toml_tables_merge_into_the_presets(tmp_path: Path) -> None:
    ref = _write(tmp_path, 'preset = "production"\n[min_injections]\nbrowser_crash = 7\n')
    config = load_scenario(ref)

    assert config.min_injections == {"runner_crash": 3, "browser_crash": 7}
    assert config.criteria == SuccessCriteria()


def test_toml_narrowing_faults_drops_the_presets_other_minimums(tmp_path: Path) -> None:
    ref = _write(tmp_path, 'preset = "production"\nfaults = ["browser_crash", "tab_crash"]\n')
    config = load_scenario(ref)

    assert config.faults == ("browser_crash", "tab_crash")
    assert config.min_injections == {"browser_crash": 5}


def test_toml_without_preset(tmp_path: Path) -> None:
    ref = _write(
        tmp_path,
        """
name = "mine"
pages = 20
duration = 600
failure_rate = 0.1
faults = ["browser_crash", "runner_crash"]
cycle = true
seed = 9
expire_session_every = 7
""",
    )
    config = load_scenario(ref)

    assert config.name == "mine"
    assert (config.pages, config.duration, config.failure_rate) == (20, 600.0, 0.1)
    assert config.faults == ("browser_crash", "runner_crash")
    assert config.cycle is True
    assert config.seed == 9
    assert config.expire_session_every == 7
    assert config.criteria == SuccessCriteria()
    assert (config.workers, config.rows, config.retry_after, config.memory_hold) == (
        1,
        50,
        2.0,
        20.0,
    )


def test_cli_overrides_apply_last(tmp_path: Path) -> None:
    ref = _write(tmp_path, 'preset = "light"\npages = 30\nseed = 4\n')
    config = load_scenario(ref, pages=12, duration="10m", seed=None, pace=1.5, workers=2)

    assert config.pages == 12
    assert config.duration == 600.0
    assert config.seed == 4  # None: not given on the command line
    assert config.pace == 1.5
    assert config.workers == 2

    soak = load_scenario("endurance", duration="10m")
    assert soak.duration == 600.0
    assert soak.cycle is True
    assert PRESETS["endurance"].duration == 8 * HOUR  # the preset itself is untouched


# --- bad input: one line naming the bad thing ---------------------------------------------


def test_unknown_preset_lists_the_known_ones() -> None:
    line = _usage("hevy")
    assert "'hevy'" in line
    assert all(name in line for name in PRESETS)


def test_unknown_preset_in_a_file(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'preset = "hevy"\n'))
    assert "unknown preset 'hevy'" in line
    assert all(name in line for name in PRESETS)


def test_unknown_profile(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'preset = "light"\nprofile = "easy"\n'))
    assert "unknown profile 'easy'" in line
    assert "lenient" in line


def test_file_not_found(tmp_path: Path) -> None:
    line = _usage(str(tmp_path / "nowhere.toml"))
    assert "nowhere.toml" in line
    assert "not found" in line


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'preset = "light"\n\npages = \n'))
    assert "not valid TOML" in line
    assert "line 3" in line


def test_unknown_fault_type(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'preset = "light"\nfaults = ["browser_crash", "teleport"]\n'))
    assert "unknown fault type 'teleport'" in line
    assert "faults" in line


@pytest.mark.parametrize(
    ("rate", "words"), [("-0.1", "greater than or equal to 0"), ("1.5", "less than or equal to 1")]
)
def test_rate_out_of_range(tmp_path: Path, rate: str, words: str) -> None:
    line = _usage(_write(tmp_path, f'preset = "light"\nfailure_rate = {rate}\n'))
    assert "failure_rate" in line
    assert words in line
    assert rate in line


def test_missing_field(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'duration = "1h"\nfailure_rate = 0.1\nfaults = []\n'))
    assert "missing field 'pages'" in line
    assert "preset" in line  # the hint


def test_bad_duration(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'preset = "light"\nduration = "ten minutes"\n'))
    assert "duration" in line
    assert "'ten minutes' is not a duration" in line

    assert "'10q' is not a duration" in _usage("light", duration="10q")


def test_unknown_field(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'preset = "light"\npagez = 3\n'))
    assert "unknown field 'pagez'" in line


def test_bad_criteria(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'preset = "light"\n[criteria]\nmin_completion = 2\n'))
    assert "criteria.min_completion" in line

    line = _usage(_write(tmp_path, 'preset = "light"\ncriteria = 3\n'))
    assert "criteria must be a table" in line


def test_tables_may_only_name_the_scenarios_faults(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'preset = "light"\n[weights]\nmemory_pressure = 2\n'))
    assert "weights names 'memory_pressure'" in line

    line = _usage(_write(tmp_path, 'preset = "light"\n[min_injections]\nbrowser_crash = -1\n'))
    assert "min_injections" in line
    assert "-1" in line


def test_fault_listed_twice(tmp_path: Path) -> None:
    line = _usage(_write(tmp_path, 'preset = "light"\nfaults = ["tab_crash", "tab_crash"]\n'))
    assert "'tab_crash' is listed more than once" in line


def test_too_few_pages_for_the_runner_crashes() -> None:
    line = _usage("production", pages=5)
    assert "runner crashes" in line
    assert "at least 6 pages" in line
    assert load_scenario("production", pages=6).pages == 6


@pytest.mark.parametrize(("field", "value"), [("pages", 0), ("workers", 0), ("pace", -1)])
def test_bad_overrides(field: str, value: int) -> None:
    line = _usage("light", **{field: value})
    assert f"{field}:" in line
    assert str(value) in line


def test_a_scenario_on_a_users_job_keeps_the_faults_that_need_no_site() -> None:
    light = for_job(PRESETS["light"], "mine.py:job", 500)
    assert light.job == "mine.py:job" and light.pages == 10
    # auth_loss becomes a cookie wipe; what needs the site is named, not hidden
    assert light.faults == ("browser_crash", "driver_crash", "tab_crash", "cookie_wipe")
    assert light.dropped_faults == (
        "element_not_found",
        "javascript_error",
        "rate_limiting",
        "server_error",
    )
    production = for_job(PRESETS["production"], "mine.py:job", 300)
    assert production.pages == 300  # a job shorter than the preset: all of it
    assert set(production.faults) == set(JOB_FAULTS) - {"database_restart"}
    assert production.min_injections == {"runner_crash": 3, "browser_crash": 5}


def test_a_users_job_rejects_site_faults_and_scenarios_left_with_none() -> None:
    with pytest.raises(ValidationError, match="needs control of the site"):
        StressTestConfig(
            name="x", pages=5, duration=60, failure_rate=0.1, faults=("rate_limiting",), job="j.py"
        )
    with pytest.raises(ValidationError, match="needs the built-in site"):
        StressTestConfig(
            name="x",
            pages=5,
            duration=60,
            failure_rate=0.1,
            faults=("browser_crash",),
            job="j.py",
            expire_session_every=3,
        )
    site_only = PRESETS["light"].model_copy(update={"faults": ("rate_limiting", "server_error")})
    with pytest.raises(UsageError, match="only faults that need the built-in site"):
        for_job(site_only, "j.py", 10)
    crashes = PRESETS["production"]
    with pytest.raises(UsageError, match="runner crashes"):
        for_job(crashes, "j.py", 4)  # three runner crashes do not fit in 4 pages


def test_a_job_named_in_a_file_or_given_moves_the_scenario_onto_it(tmp_path: Path) -> None:
    job_file = tmp_path / "tiny.py"
    job_file.write_text(
        "from enduro import Job\njob = Job(name='t', pages=range(1, 8), handler=lambda ctx: [])\n"
    )
    scenario = tmp_path / "mine.toml"
    scenario.write_text(f'preset = "light"\njob = "{job_file}"\n')
    config = load_scenario(scenario)
    assert config.job == str(job_file)
    assert config.pages == 7  # the job has fewer pages than light's 10
    assert "rate_limiting" in config.dropped_faults and "cookie_wipe" in config.faults
    assert load_scenario("light", job=str(job_file), pages=5).pages == 5
    with pytest.raises(UsageError, match="has 7 pages"):
        load_scenario("light", job=str(job_file), pages=8)
    with pytest.raises(UsageError, match="not found"):
        load_scenario("light", job=str(tmp_path / "gone.py"))
