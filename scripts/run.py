"""`make run`: migrate, load the demo org, then serve web, Celery worker and beat together.

Without DATABASE_URL/REDIS_URL this is the embedded default (SQLite, in-process channel layer,
a filesystem Celery broker); with them, the real stack. Ctrl-C stops all three cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.processes import BEAT, WORKER, web  # noqa: E402 - needs the project on sys.path

DEMO_LOGINS = [
    ("alice", "rep, East"),
    ("bob", "rep, East"),
    ("carol", "support"),
    ("dave", "manager of East"),
    ("erin", "rep, West"),
    ("admin", "administrator"),
]


def _port() -> int:
    raw = os.environ.get("PORT", "8000")
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        sys.exit(f"PORT={raw!r} is not a TCP port number (1-65535).")
    return port


def _bin(argv: list[str]) -> list[str]:
    """Run console scripts from the same virtualenv as this interpreter."""
    local = Path(sys.executable).parent / argv[0]
    return [str(local), *argv[1:]] if local.exists() else argv


def main() -> int:
    port = _port()
    host = os.environ.get("HOST", "127.0.0.1")
    # Links in notification emails point at this server unless told otherwise.
    os.environ.setdefault("TIDINGS_BASE_URL", f"http://{host}:{port}")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
    subprocess.run(
        [*manage, "seed_demo", "--password", os.environ.get("DEMO_PASSWORD", "demo")],
        cwd=ROOT,
        check=True,
    )

    stack = (
        "PostgreSQL + Redis" if os.environ.get("DATABASE_URL") else "embedded (SQLite, in-process)"
    )
    commands = {"web": web(host, port), "worker": WORKER, "beat": BEAT}
    children = {name: subprocess.Popen(_bin(argv), cwd=ROOT) for name, argv in commands.items()}
    print(f"\n  Tidings is running at http://{host}:{port}/   ({stack})", flush=True)
    print("  Demo logins (password: demo):", ", ".join(f"{u} ({r})" for u, r in DEMO_LOGINS))
    mail = os.environ.get("TIDINGS_MAIL_DIR") or "var/mail/"
    if not os.environ.get("EMAIL_HOST"):
        print(f"  Notification emails are written as files under {mail}")
    print("  Press Ctrl-C to stop web, worker and beat.\n", flush=True)

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    failed = None
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                failed = name
                stopping = True
        time.sleep(0.2)
    if failed:
        print(
            f"\n  The {failed} process stopped (exit {children[failed].returncode}); "
            "stopping the rest."
        )
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    print("  Stopped.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
