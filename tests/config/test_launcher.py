"""`make run`'s launcher (scripts/run.py) keeps web, worker and beat up, with real processes."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tidings_launcher", ROOT / "scripts" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_process_that_stops_is_started_again_and_the_others_keep_running(
    tmp_path: Path,
) -> None:
    """As the Celery worker does when Redis drops its connection at the wrong moment: the demo
    must restart it, not stop web and beat with it."""
    runs = tmp_path / "runs"
    # First run: record and exit 1 (the crash). Later runs: record and stay up until stopped.
    flaky = (
        f"import pathlib, sys, time; p = pathlib.Path({str(runs)!r}); "
        "first = not p.exists(); p.open('a').write('run\\n'); "
        "sys.exit(1) if first else time.sleep(60)"
    )
    steady = "import time; time.sleep(60)"
    supervisor = _launcher().Supervisor({"worker": _python(flaky), "web": _python(steady)})
    supervisor.BACKOFF = 0.05
    supervisor.start()
    web = supervisor.children["web"]
    result: list[str | None] = []
    watcher = threading.Thread(target=lambda: result.append(supervisor.watch(poll=0.02)))
    watcher.start()
    try:
        deadline = time.monotonic() + 30
        while (not runs.exists() or runs.read_text().count("run") < 2) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert runs.read_text().count("run") == 2, "the stopped worker was not started again"
        assert supervisor.children["worker"].poll() is None
        assert supervisor.children["web"] is web and web.poll() is None
    finally:
        supervisor.stopping = True
        watcher.join(timeout=10)
        supervisor.stop_all(grace=5)
    assert result == [None]
    assert all(child.poll() is not None for child in supervisor.children.values())


def test_a_process_that_keeps_stopping_stops_the_launcher_and_is_named() -> None:
    supervisor = _launcher().Supervisor(
        {"beat": _python("raise SystemExit(2)"), "web": _python("import time; time.sleep(60)")}
    )
    supervisor.BACKOFF = 0.0
    supervisor.MAX_RESTARTS = 3
    supervisor.start()
    try:
        assert supervisor.watch(poll=0.02) == "beat"
        assert len(supervisor.restarts["beat"]) == 3
    finally:
        supervisor.stop_all(grace=5)
    assert supervisor.children["web"].poll() is not None
