"""The operator's settings: every AIFACTORY_* variable it reads has one validated, documented field,
the defaults are the values the operator always had, and a bad value is refused by name."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aifactory_operator.docsgen import OTHER_VARIABLES, render_settings_page
from aifactory_operator.settings import InvalidSetting, Settings, env_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "settings.md"

# What the operator read before these settings existed, variable by variable.
DEFAULTS = {
    "AIFACTORY_POD_NAME": None,
    "AIFACTORY_RESYNC_SECONDS": 30.0,
    "AIFACTORY_NAMESPACE": "aifactory-system",
    "AIFACTORY_INSTALLED_BY": "",
    "AIFACTORY_PEERING_LIFETIME_SECONDS": 60,
    "AIFACTORY_TRAINING_TICK_SECONDS": 1.0,
    "AIFACTORY_STARVATION_SECONDS": 300.0,
    "AIFACTORY_RESTART_BACKOFF_SECONDS": 10.0,
    "AIFACTORY_TICK_ADMISSIONS": 500,
    "AIFACTORY_QUEUE_REFRESHES_PER_TICK": 50,
    "AIFACTORY_QUEUE_ENTRIES_PER_TICK": 200,
    "AIFACTORY_TICK_WRITES": 100,
    "AIFACTORY_REPORT_WRITES_MIN": 20,
    "AIFACTORY_TRAINING_WRITERS": 8,
    "AIFACTORY_ADMISSION_UNSCHEDULABLE_GRACE_SECONDS": 120.0,
    "AIFACTORY_WEBHOOK": "on",
    "AIFACTORY_WEBHOOK_LISTEN": None,
    "AIFACTORY_WEBHOOK_URL": None,
    "AIFACTORY_WEBHOOK_SERVICE": None,
    # New with issue 21 (the certificate was renewed only at start before): a year, checked hourly.
    "AIFACTORY_WEBHOOK_CERT_VALIDITY_SECONDS": 365 * 24 * 3600,
    "AIFACTORY_WEBHOOK_CERT_CHECK_SECONDS": 3600.0,
    "AIFACTORY_PORT_BASE": 16440,
    "AIFACTORY_GC_THRESHOLD": (50000, 20, 10),
    "AIFACTORY_CRASH_AFTER_WRITES": 0,
}


def test_every_default_is_the_value_the_operator_had_before(settings_from):
    settings = settings_from({})
    assert {env_name(name): getattr(settings, name) for name in Settings.model_fields} == DEFAULTS


def test_each_variable_sets_its_field(settings_from):
    settings = settings_from({"AIFACTORY_TICK_WRITES": "7", "AIFACTORY_TRAINING_TICK_SECONDS": "0.5"})
    assert (settings.tick_writes, settings.training_tick_seconds) == (7, 0.5)


def test_an_empty_variable_counts_as_unset(settings_from):
    assert settings_from(
        {"AIFACTORY_CRASH_AFTER_WRITES": "", "AIFACTORY_WEBHOOK_SERVICE": ""}
    ) == settings_from({})


def test_a_bad_value_is_refused_with_the_variable_its_value_and_the_docs(settings_from):
    with pytest.raises(InvalidSetting) as refused:
        settings_from({"AIFACTORY_TICK_WRITES": "abc"})
    assert str(refused.value) == (
        "AIFACTORY_TICK_WRITES='abc': Input should be a valid integer, unable to parse string as an integer"
        " (see docs/settings.md)"
    )


def test_every_bad_variable_is_named_at_once(settings_from):
    with pytest.raises(InvalidSetting, match=r"AIFACTORY_WEBHOOK='no'.*AIFACTORY_PORT_BASE='x'"):
        settings_from({"AIFACTORY_WEBHOOK": "no", "AIFACTORY_PORT_BASE": "x"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AIFACTORY_RESYNC_SECONDS", "0"),
        ("AIFACTORY_TRAINING_TICK_SECONDS", "0"),
        ("AIFACTORY_PEERING_LIFETIME_SECONDS", "0"),
        ("AIFACTORY_STARVATION_SECONDS", "-1"),
        ("AIFACTORY_RESTART_BACKOFF_SECONDS", "-1"),
        ("AIFACTORY_TICK_ADMISSIONS", "0"),
        ("AIFACTORY_QUEUE_REFRESHES_PER_TICK", "-1"),
        ("AIFACTORY_QUEUE_ENTRIES_PER_TICK", "-1"),
        ("AIFACTORY_TICK_WRITES", "-1"),
        ("AIFACTORY_REPORT_WRITES_MIN", "-1"),
        ("AIFACTORY_TRAINING_WRITERS", "0"),
        ("AIFACTORY_ADMISSION_UNSCHEDULABLE_GRACE_SECONDS", "-0.5"),
        ("AIFACTORY_PORT_BASE", "65530"),
        ("AIFACTORY_CRASH_AFTER_WRITES", "-1"),
        ("AIFACTORY_TICK_WRITES", "2.5"),
        ("AIFACTORY_INSTALLED_BY", "kustomize"),
        ("AIFACTORY_WEBHOOK", "disabled"),
        ("AIFACTORY_WEBHOOK_LISTEN", "9443"),
        ("AIFACTORY_WEBHOOK_LISTEN", "0.0.0.0:70000"),
        ("AIFACTORY_WEBHOOK_URL", "http://10.0.0.1:9443"),
        ("AIFACTORY_WEBHOOK_SERVICE", "Operator_Webhook"),
    ],
)
def test_a_value_out_of_bounds_is_refused_by_name(settings_from, variable, value):
    with pytest.raises(InvalidSetting, match=f"^{variable}={value!r}: "):
        settings_from({variable: value})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AIFACTORY_TICK_WRITES", "0"),
        ("AIFACTORY_ADMISSION_UNSCHEDULABLE_GRACE_SECONDS", "0"),
        ("AIFACTORY_TRAINING_WRITERS", "1"),
        ("AIFACTORY_WEBHOOK_LISTEN", "0.0.0.0:9443"),
        ("AIFACTORY_WEBHOOK_URL", "https://10.0.0.1:9443"),
        ("AIFACTORY_WEBHOOK_SERVICE", "aifactory-operator-webhook"),
    ],
)
def test_a_value_at_its_bound_is_accepted(settings_from, variable, value):
    settings_from({variable: value})


def test_the_settings_cannot_be_changed_once_read(settings_from):
    with pytest.raises(ValueError, match="frozen"):
        settings_from({}).tick_writes = 1  # type: ignore[misc]


def test_the_operator_reads_its_settings_once():
    assert load_settings() is load_settings()


def test_every_setting_says_what_it_does_and_why():
    for name, field in Settings.model_fields.items():
        assert len(field.description or "") >= 60, f"{name}: describe what it does and when to change it"


def test_the_settings_page_is_current():
    assert PAGE.read_text() == render_settings_page(), "docs/settings.md is stale: run `make crds`"


def test_the_settings_page_lists_every_variable_with_its_default():
    page = render_settings_page()
    assert "| `AIFACTORY_TICK_WRITES` | integer | `100` | >= 0 | Writes per tick" in page
    assert "| `AIFACTORY_GC_THRESHOLD` | integers `a,b,c` | `50000,20,10` |" in page
    for name in Settings.model_fields:
        assert f"| `{env_name(name)}` |" in page


def variables_named_in(folder: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / folder).rglob("*"):
        if path.is_file() and path.suffix in {".py", ".sh", ".yaml", ".tpl", ".md", ".env", ""}:
            names |= set(re.findall(r"\bAIFACTORY_[A-Z][A-Z_]*[A-Z]\b", path.read_text(errors="ignore")))
    return names


def test_every_variable_of_the_repository_is_a_setting_or_said_not_to_be_one():
    named = set().union(
        *(variables_named_in(f) for f in ("operator/src", "charts", "tests", "bench", "hack"))
    )
    named |= variables_named_in(".ci") | set(
        re.findall(r"AIFACTORY_[A-Z_]+", (ROOT / "Makefile").read_text())
    )
    known = {env_name(name) for name in Settings.model_fields} | set(OTHER_VARIABLES)
    assert named - known == set(), "add them to settings.py, or to OTHER_VARIABLES in docsgen.py"


def test_the_operator_refuses_to_start_with_a_bad_value_in_one_line():
    env = {**os.environ, "AIFACTORY_TICK_WRITES": "abc", "KUBECONFIG": "/nonexistent"}
    result = subprocess.run(
        [sys.executable, "-m", "aifactory_operator.cli", "run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "aifactory: error: AIFACTORY_TICK_WRITES='abc': Input should be a valid integer, unable to parse string"
        " as an integer (see docs/settings.md)"
    ]
