"""Which broker deployment started an instance, written into the name a provider keeps for it.

Several brokers may share one provider account or one Docker engine: a staging deployment next
to production, a test run next to a developer's demo. Each knows only its own database, so an
instance it does not know might be its own orphan or another broker's live rental. Where a
provider takes a name, the broker writes both ids into it, `<rental id>.<deployment id>`, and
reads them back from every listing; reconciliation then acts only on instances of its own
deployment. A bare rental id (an instance named before deployments were tagged, or by a broker
without one) reads as untagged. Rental ids contain no dot, and deployment ids are restricted to
letters, digits, `-` and `_`, so the split is never ambiguous.
"""

from __future__ import annotations

import re

SEPARATOR = "."
DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def tagged_name(rental_id: str, deployment: str | None) -> str:
    """The instance name for `rental_id` started by `deployment` (the bare id without one)."""
    return rental_id if deployment is None else f"{rental_id}{SEPARATOR}{deployment}"


def read_name(name: str) -> tuple[str, str | None]:
    """The rental id and the deployment (None when untagged) that a name carries."""
    rental_id, separator, deployment = name.rpartition(SEPARATOR)
    if not separator or not rental_id or not DEPLOYMENT_ID.match(deployment):
        return name, None
    return rental_id, deployment
