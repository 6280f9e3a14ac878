"""Inbound-email test settings: a known secret and domains, attachments in the test's folder.

Helpers that build and send messages are in tests/integrations/messages.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils.functional import empty

from integrations.models import attachment_storage
from tests.integrations.messages import SECRET


@pytest.fixture(autouse=True)
def _inbound_settings(settings: Any, tmp_path: Path) -> Iterator[None]:
    settings.TIDINGS_INBOUND_SECRET = SECRET
    settings.TIDINGS_INBOUND_DOMAIN = "inbound.tidings.example"
    settings.TIDINGS_OWN_DOMAINS = ["tidings.example"]
    settings.TIDINGS_INBOUND_AUTHSERV_ID = "mx.tidings.example"
    settings.TIDINGS_ATTACHMENT_DIR = tmp_path / "attachments"
    settings.TIDINGS_INBOUND_ACCEPT_IN_POOL = False
    # In-process tests count the drains an accept sends as it returns; the gathering thread is
    # tested on its own (test_batches.py).
    settings.TIDINGS_INBOUND_DRAIN_GATHER_SECONDS = 0
    # The storage reads its folder on first use: have it read this test's.
    attachment_storage._wrapped = empty
    yield
    attachment_storage._wrapped = empty
