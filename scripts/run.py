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


class Supervisor:
    """Web, worker and beat, each restarted when it stops on its own, as a process manager would.

    A Celery worker exits on some broker failures instead of reconnecting (kombu cannot restore
    its unacknowledged messages on a connection Redis just dropped: "Unrecoverable error:
    AttributeError ... 'hostname'"); stopping the whole demo then turned a Redis restart into an
    outage. A process that keeps stopping (MAX_RESTARTS within WINDOW seconds) is a real fault:
    then everything stops and the launcher says which one.
    """

    MAX_RESTARTS = 5
    WINDOW = 60.0
    BACKOFF = 1.0

    def __init__(self, commands: dict[str, list[str]]) -> None:
        self.commands = commands
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, list[float]] = {name: [] for name in commands}
        self.stopping = False

    def start(self) -> None:
        for name in self.commands:
            self._spawn(name)

    def _spawn(self, name: str) -> None:
        self.children[name] = subprocess.Popen(self.commands[name], cwd=ROOT)

    def watch(self, poll: float = 0.2) -> str | None:
        """Until `stopping`: restart what stops. Returns the name of a process that kept
        stopping, or None when asked to stop."""
        while not self.stopping:
            for name, child in self.children.items():
                if child.poll() is None:
                    continue
                now = time.monotonic()
                recent = [t for t in self.restarts[name] if now - t < self.WINDOW]
                if len(recent) >= self.MAX_RESTARTS:
                    return name
                self.restarts[name] = [*recent, now]
                print(
                    f"\n  The {name} process stopped (exit {child.returncode}); "
                    f"starting it again in {self.BACKOFF * len(self.restarts[name]):.0f} s.",
                    flush=True,
                )
                time.sleep(self.BACKOFF * len(self.restarts[name]))
                self._spawn(name)
            time.sleep(poll)
        return None

    def stop_all(self, grace: float = 15.0) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()


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
    supervisor = Supervisor({name: _bin(argv) for name, argv in commands.items()})
    supervisor.start()
    print(f"\n  Tidings is running at http://{host}:{port}/   ({stack})", flush=True)
    print("  Demo logins (password: demo):", ", ".join(f"{u} ({r})" for u, r in DEMO_LOGINS))
    mail = os.environ.get("TIDINGS_MAIL_DIR") or "var/mail/"
    if not os.environ.get("EMAIL_HOST"):
        print(f"  Notification emails are written as files under {mail}")
    print("  Press Ctrl-C to stop web, worker and beat.\n", flush=True)

    def stop(signum: int, frame: object) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    failed = supervisor.watch()
    if failed:
        print(
            f"\n  The {failed} process kept stopping ({supervisor.MAX_RESTARTS} restarts within "
            f"{supervisor.WINDOW:.0f} s); stopping the rest."
        )
    supervisor.stop_all()
    print("  Stopped.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
