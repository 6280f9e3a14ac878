"""Settings of the peer: Tidings' settings plus django-activity-stream with its default settings.

Used for `manage.py migrate` of the benchmark database (so the peer's tables exist beside ours) and
by the process that measures the peer. No ACTSTREAM_SETTINGS: the defaults (FETCH_RELATIONS on).

`config/__init__.py` starts the Celery app, which reads the settings while they are being loaded;
that works for `config.settings` itself but not for a module that imports it. So the `config`
package is registered without running its `__init__` while `config.settings` is read, and its
`__init__` runs at the end of this module, when every setting below is already defined.
"""

import importlib.util
import sys

_spec = importlib.util.find_spec("config")
assert _spec is not None and _spec.loader is not None
_config = importlib.util.module_from_spec(_spec)
sys.modules["config"] = _config

from config.settings import *  # noqa: E402, F403
from config.settings import INSTALLED_APPS  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "actstream", "bench.feed.peer_app.PeerConfig"]

_spec.loader.exec_module(_config)
