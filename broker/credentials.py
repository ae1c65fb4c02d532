"""Per-rental credentials that a provider hands out once, kept encrypted at rest.

Some providers return a rental's workload key and endpoint only in the answer to the rent call
(ComputeGPU's marketplace rentals: the rental detail never repeats them). The broker must keep
them to reach the workload later, from any replica and after any restart, so they go into the
rental row, sealed with Fernet (AES-128-CBC with an HMAC, from `cryptography`): a copy of the
database alone reveals nothing.

The key comes from `GPUBROKER_SECRET_KEY`: one or more Fernet keys, comma-separated. The first
encrypts; every one of them decrypts (`MultiFernet`). Rotation is therefore: generate a new key,
put it first (`GPUBROKER_SECRET_KEY=<new>,<old>`), restart every replica; rows sealed with the
old key still open, and each is sealed again with the new key the first time it is read, so
the old key may be dropped once no live rental predates the rotation. Without a key the broker
keeps no such credential (it never stores one in the clear) and says so at startup, naming the
providers whose rentals cannot be reached through the connect proxy until a key is set.

Credentials never leave this module except as an `Upstream` for the proxy: not in a response,
a log line or an error (the `Upstream` headers are `repr=False`; a key that cannot open a row is
reported by rental id only).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from weakref import WeakKeyDictionary

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import update
from sqlmodel import Session, col

from broker.db import Database
from broker.rentals.tables import Rental
from providers.registry import PROVIDERS
from providers.rental import Upstream

log = logging.getLogger("gpubroker.credentials")


class SecretKeyInvalid(ValueError):
    """`GPUBROKER_SECRET_KEY` holds something that is not a Fernet key."""


def generate_key() -> str:
    """A fresh Fernet key, as `GPUBROKER_SECRET_KEY` takes it."""
    return Fernet.generate_key().decode()


class Sealer:
    """Seals and opens credentials with the configured keys (the first one seals)."""

    def __init__(self, keys: Iterable[str]) -> None:
        parts = [key.strip() for key in keys if key.strip()]
        if not parts:
            raise SecretKeyInvalid("GPUBROKER_SECRET_KEY names no key")
        try:
            self._fernets = [Fernet(part.encode()) for part in parts]
        except ValueError:
            raise SecretKeyInvalid(
                "GPUBROKER_SECRET_KEY must be Fernet keys (32 url-safe base64-encoded bytes), "
                "comma-separated; generate one with: python -c 'from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())'"
            ) from None
        self._multi = MultiFernet(self._fernets)

    @classmethod
    def from_setting(cls, secret: SecretStr | None) -> Sealer | None:
        if secret is None or not secret.get_secret_value().strip():
            return None
        return cls(secret.get_secret_value().split(","))

    def seal(self, upstream: Upstream) -> str:
        plain = json.dumps({"base_url": upstream.base_url, "headers": dict(upstream.headers)})
        return self.seal_text(plain)

    def seal_text(self, plain: str) -> str:
        return self._multi.encrypt(plain.encode()).decode()

    def open_text(self, sealed: str) -> str:
        """The plain text; `InvalidToken` when no configured key opens it."""
        return self._multi.decrypt(sealed.encode()).decode()

    def open(self, sealed: str) -> tuple[Upstream, str | None]:
        """The credentials, and the row's new sealed text when it was sealed with an old key.

        Raises `InvalidToken` when no configured key opens it.
        """
        token = sealed.encode()
        data = json.loads(self._multi.decrypt(token))
        upstream = Upstream(data["base_url"], dict(data["headers"]))
        try:
            self._fernets[0].decrypt(token)
        except InvalidToken:
            return upstream, self._multi.rotate(token).decode()
        return upstream, None


def warn_without_key(sealer: Sealer | None, providers: Iterable[str]) -> None:
    """Say once, at startup, which enabled providers need a key that is not set."""
    needing = sorted(name for name in providers if PROVIDERS.get(name) and _once(name))
    if sealer is None and needing:
        log.error(
            "GPUBROKER_SECRET_KEY is not set: credentials that %s return only once cannot be "
            "kept, so such rentals cannot be reached through the connect proxy; set it to a "
            "Fernet key (python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')",
            ", ".join(needing),
        )


def _once(name: str) -> bool:
    return PROVIDERS[name].credentials_once


def store(
    session: Session, sealer: Sealer | None, rental_id: str, upstream: Upstream | None
) -> None:
    """Keep the current placement's once-only credentials on the rental (or clear old ones)."""
    sealed = None if upstream is None or sealer is None else sealer.seal(upstream)
    if upstream is not None and sealer is None:
        log.error("rental %s: provider credentials not kept: no GPUBROKER_SECRET_KEY", rental_id)
    session.exec(update(Rental).where(col(Rental.id) == rental_id).values(upstream_sealed=sealed))


def stored_upstream(db: Database, sealer: Sealer | None, rental_id: str) -> Upstream | None:
    """The rental's stored credentials, or None (none stored, no key, or a key that cannot open
    them: the last is logged by rental id). A row sealed with an old key is sealed again."""
    with db.session(read_only=True) as session:
        rental = session.get(Rental, rental_id)
        sealed = rental.upstream_sealed if rental is not None else None
    if sealed is None or sealer is None:
        return None
    try:
        upstream, resealed = sealer.open(sealed)
    except InvalidToken:
        log.error("rental %s: stored credentials open with none of GPUBROKER_SECRET_KEY", rental_id)
        return None
    if resealed is not None:
        with db.session() as session:
            row = session.get(Rental, rental_id)
            if row is not None and row.upstream_sealed == sealed:
                row.upstream_sealed = resealed
                session.add(row)
    return upstream


# The sealer of each open database, set when the application is built (`attach`), so the
# placement code reaches it through the database it already holds; keyed weakly, so apps built
# side by side in one process (tests, the demo) keep their own keys.
_SEALERS: WeakKeyDictionary[Database, Sealer | None] = WeakKeyDictionary()


def attach(db: Database, sealer: Sealer | None) -> None:
    _SEALERS[db] = sealer


def sealer_of(db: Database) -> Sealer | None:
    return _SEALERS.get(db)
