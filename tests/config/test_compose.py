"""docker-compose.yml is not run here (no Docker engine), so it is checked by reading it."""

from __future__ import annotations

import importlib
import re
import shutil
import sys
from pathlib import Path

import yaml

from config.processes import BEAT, WORKER, inbound, web

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _executable_exists(name: str) -> bool:
    return (Path(sys.executable).parent / name).exists() or shutil.which(name) is not None


def test_compose_has_the_production_services() -> None:
    assert {"postgres", "redis", "web", "inbound", "worker", "beat"} <= set(COMPOSE["services"])


def test_compose_commands_are_the_ones_make_run_starts() -> None:
    services = COMPOSE["services"]
    assert services["web"]["command"] == web("0.0.0.0", 8000)
    assert services["inbound"]["command"] == inbound("0.0.0.0", 8001)
    assert services["worker"]["command"] == WORKER
    assert services["beat"]["command"] == BEAT


def test_every_compose_command_exists_in_the_project() -> None:
    for name in ("web", "inbound", "worker", "beat", "migrate"):
        argv = COMPOSE["services"][name]["command"]
        assert _executable_exists(argv[0]), f"{name}: {argv[0]} is not installed"
        if argv[0] in ("daphne", "uvicorn"):
            application = argv[-1] if argv[0] == "daphne" else argv[1]
            module, attribute = application.split(":")
            assert hasattr(importlib.import_module(module), attribute)
        elif argv[0] == "celery":
            app = importlib.import_module(argv[argv.index("-A") + 1]).celery_app
            assert app.main == "tidings"
        elif argv[:2] == ["python", "manage.py"]:
            from django.core.management import get_commands

            assert argv[2] in get_commands()


def test_makefile_targets_run_the_same_commands() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("install", "run", "test", "lint", "bench", "web", "inbound", "worker", "beat"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    for name in ("web", "inbound", "worker", "beat"):
        assert f"-m config.processes {name}" in makefile


def test_env_example_lists_every_variable_the_settings_read() -> None:
    example = (ROOT / ".env.example").read_text()
    settings_source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', settings_source))
    listed = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert read, "no environment variable found in settings"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"


def test_long_running_services_come_back_when_they_stop() -> None:
    services = COMPOSE["services"]
    for name in ("web", "inbound", "worker", "beat"):
        assert services[name].get("restart") in ("unless-stopped", "always", "on-failure"), name
    assert services["migrate"]["restart"] == "no"
