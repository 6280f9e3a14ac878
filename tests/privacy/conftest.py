"""Privacy tests run the inbound pipeline (its settings) and keep sent emails as files in the
test's folder, like the embedded default does in var/mail/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integrations.conftest import _inbound_settings  # noqa: F401 (autouse fixture, reused)


@pytest.fixture(autouse=True)
def _mail_files(settings: Any, tmp_path: Path) -> Path:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    return tmp_path / "mail"
