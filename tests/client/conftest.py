"""The live broker the client tests talk to (`tests.cli.live`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broker.settings import CoreSettings
from tests.cli.live import Live, live_broker


@pytest.fixture
def live(make_settings: Callable[..., CoreSettings], tmp_path: Path) -> Iterator[Live]:
    with live_broker(make_settings, tmp_path / "config") as broker:
        yield broker
