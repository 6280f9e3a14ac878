"""Bad environment values stop the start with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env

ROOT = Path(__file__).resolve().parents[2]


def test_bool_accepts_the_usual_words(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expected in [("true", True), ("1", True), ("off", False), ("No", False)]:
        monkeypatch.setenv("X_FLAG", raw)
        assert env.env_bool("X_FLAG", not expected) is expected


@pytest.mark.parametrize(
    ("call", "raw"),
    [
        (lambda: env.env_bool("X_VALUE", False), "maybe"),
        (lambda: env.env_int("X_VALUE", 1), "ten"),
        (lambda: env.env_int("X_VALUE", 1, maximum=5), "9"),
        (lambda: env.env_url("X_VALUE", schemes=("redis",)), "http://localhost"),
        (lambda: env.env_url("X_VALUE", schemes=("redis",)), "redis://"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, call, raw: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("X_VALUE", raw)
    with pytest.raises(ImproperlyConfigured, match="X_VALUE"):
        call()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x/y"),
        ("REDIS_URL", "localhost:6379"),
        ("DJANGO_DEBUG", "perhaps"),
        ("DJANGO_SECRET_KEY", "short"),
        ("TIDINGS_TICKET_TTL_SECONDS", "forever"),
    ],
)
def test_manage_py_refuses_to_start_with_a_bad_value(name: str, value: str) -> None:
    environ = {**os.environ, name: value}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert name in result.stderr


def test_make_run_refuses_a_bad_port() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env={**os.environ, "PORT": "http"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PORT" in result.stderr


def test_the_web_process_takes_its_gc_thresholds_from_the_settings_and_freezes_its_code() -> None:
    """Loading the ASGI application applies TIDINGS_WEB_GC_GEN0/GEN1_THRESHOLD and freezes what
    is loaded by then, views included, so that full collections no longer walk it
    (docs/benchmarks.md). In a fresh process, as a web process loads it."""
    code = (
        "import gc, sys, config.asgi; from django.conf import settings as s;"
        "print(gc.get_threshold()[:2] == (s.TIDINGS_WEB_GC_GEN0_THRESHOLD,"
        " s.TIDINGS_WEB_GC_GEN1_THRESHOLD), gc.get_freeze_count(), 'feed.api' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "TIDINGS_WEB_GC_GEN1_THRESHOLD": "77"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    takes_thresholds, frozen, views_loaded = result.stdout.split()
    assert takes_thresholds == "True"
    assert int(frozen) > 50_000  # the modules, classes and functions loaded at start-up
    assert views_loaded == "True"
