"""Which instances at a provider are this broker deployment's to act on.

A deployment is one broker installation: all the replicas that share one database. Its id is
`GPUBROKER_DEPLOYMENT_ID` when set, otherwise generated once and kept in the `deployment` table,
so every replica and every restart tags with the same id. Adapters of providers that take a
name, label or tag put it on every instance (`providers.ownership`, Docker labels) and report
it back from their listings.

Reconciliation asks `judge` about each instance it does not know, and acts only on `OWN` ones:
- tagged with this deployment's id: its own;
- tagged with another id: `FOREIGN`, never touched (another broker on the same account/engine);
- untagged, but the handle of one of this deployment's own recorded placements: its own (the
  placement record proves it, even where the provider takes no tag);
- untagged otherwise: its own only when the operator declares the provider account the
  broker's alone (`GPUBROKER_EXCLUSIVE_PROVIDERS`; by default every provider that cannot tag, as
  the broker always assumed), else `UNTAGGED` and left alone.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from enum import StrEnum

from sqlalchemy.exc import IntegrityError

from broker.db import Database
from broker.rentals.tables import Deployment
from providers.registry import PROVIDERS
from providers.rental import Instance


class Verdict(StrEnum):
    OWN = "own"
    FOREIGN = "foreign"
    UNTAGGED = "untagged"


def resolve_deployment(db: Database, configured: str | None) -> str:
    """The configured id, else the one stored in the database (generated on first use)."""
    if configured:
        return configured
    with db.session(read_only=True) as session:
        row = session.get(Deployment, 1)
    if row is not None:
        return row.deployment_id
    try:
        with db.session() as session:
            session.add(Deployment(id=1, deployment_id="gpb-" + secrets.token_hex(8)))
    except IntegrityError:
        pass  # another replica stored one first: that one is the deployment's id
    with db.session(read_only=True) as session:
        stored = session.get(Deployment, 1)
    if stored is None:
        raise RuntimeError("the deployment id could not be stored")
    return stored.deployment_id


def exclusive_providers(configured: Collection[str] | None) -> frozenset[str]:
    """Providers whose untagged instances reconciliation may end (see module docstring)."""
    if configured is None:
        return frozenset(name for name, spec in PROVIDERS.items() if not spec.tags_instances)
    return frozenset(configured)


def judge(
    instance: Instance,
    deployment: str,
    *,
    exclusive: bool,
    placed_handles: Collection[str] = (),
) -> Verdict:
    if instance.deployment is not None:
        return Verdict.OWN if instance.deployment == deployment else Verdict.FOREIGN
    if exclusive or instance.handle in placed_handles:
        return Verdict.OWN
    return Verdict.UNTAGGED
