"""Brokers served over loopback next to every simulator, as for the rental limits."""

from __future__ import annotations

from tests.limits.conftest import limited as limited
from tests.limits.conftest import make_limited as make_limited
from tests.limits.conftest import sims as sims
