"""Where an offer is: every provider's spelling of a place read as a country and a continent.

Providers spell places their own way: an ISO code ("DE"), a city or state and a code ("Paris, FR",
"Quebec, CA"), a cloud region ("eu-west", "us-central1", "ap-southeast"), a continent ("EU") or a
market ("APAC"). `resolve_place` reads any of them through the tables in pricing/place_table.py
(data only, like pricing/gpu_table.py) and the ISO 3166 names and codes of `pycountry`, and gives a
`Place`: an ISO 3166-1 alpha-2 country (or None where the spelling names only a continent) and a
continent code. A spelling nobody knows is kept as given, flagged (`known` False) and logged once.

`RegionNeedle` is the other direction: what a user's `region=` means. A continent ("eu",
"europe", "na", "north america", "asia") matches by continent, a country (its code or name)
by country, anything else is a case-insensitive substring of the provider's own region text.
Two-letter continent codes win over the country codes they collide with ("na" is North America,
not Namibia; "sa" South America, not Saudi Arabia): those countries match by name.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import pycountry

from pricing.place_table import (
    CITIES,
    CLOUD_PREFIXES,
    CLOUD_REGIONS,
    CONTINENT_OF,
    CONTINENT_WORDS,
    COUNTRY_ALIASES,
    NO_PLACE,
    REGION_WORDS,
)

log = logging.getLogger("gpubroker.pricing")

CONTINENTS = ("NA", "SA", "EU", "AS", "AF", "OC")
_SPACES = re.compile(r"[\s_]+")
_CLOUD = re.compile(r"^([a-z]+)-([a-z]+)")
_ASIDE = re.compile(r"\s*\([^)]*\)")
_MAX_REMEMBERED = 100_000


@dataclass(frozen=True, slots=True)
class Place:
    """A place as the broker understands it; `known` is False for a spelling nobody knows."""

    country: str | None
    continent: str | None
    known: bool = True


UNKNOWN = Place(None, None, known=False)
NOWHERE = Place(None, None)


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text.strip().casefold())


@lru_cache(maxsize=4096)
def country_code(text: str) -> str | None:
    """The ISO 3166-1 alpha-2 code a country code (alpha-2 or alpha-3) or name means, or None."""
    key = _clean(text)
    if not key:
        return None
    if key in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[key]
    try:
        country = pycountry.countries.lookup(key)
    except LookupError:
        return None
    code: str = country.alpha_2
    return code


def continent_of(country: str) -> str | None:
    """The continent code of an alpha-2 country (None for Antarctica and its islands)."""
    return CONTINENT_OF.get(country.upper())


def _country_place(code: str) -> Place:
    return Place(code, continent_of(code))


def _cloud_place(key: str) -> Place | None:
    """A cloud provider's region name: "us-central1", "eu-west-2", "ap-southeast", "asia-east1"."""
    exact = CLOUD_REGIONS.get(key.replace(" ", "-"))
    if exact is not None:
        return _country_place(exact)
    match = _CLOUD.match(key.replace(" ", "-"))
    if match is None:
        return None
    prefix = CLOUD_PREFIXES.get(match.group(1))
    if prefix is None:
        return None
    country, continent = prefix
    return Place(country, continent)


def _read(key: str) -> Place | None:
    """The place a cleaned spelling names, or None when nothing here knows it."""
    if key in NO_PLACE:
        return NOWHERE
    continent = CONTINENT_WORDS.get(key) or REGION_WORDS.get(key)
    if continent is not None:
        return Place(None, continent)
    if key in CITIES:
        return _country_place(CITIES[key])
    code = country_code(key)
    if code is not None:
        return _country_place(code)
    cloud = _cloud_place(key)
    if cloud is not None:
        return cloud
    if "(" in key and (bare := _ASIDE.sub("", key).strip()) != key:
        # "local (simulated)": a remark in parentheses says nothing about the place.
        return _read(bare) if bare else None
    if "," in key:
        # "Paris, FR", "Quebec, CA", "Frankfurt, Germany": the last part that names a place wins.
        for part in reversed([p.strip() for p in key.split(",")]):
            place = _read(part) if part else None
            if place is not None and place.known and place != NOWHERE:
                return place
    return None


class _Places:
    """Resolved spellings, remembered; an unknown one is logged the first time only."""

    def __init__(self) -> None:
        self._known: dict[str, Place] = {}
        self._lock = threading.Lock()

    def resolve(self, text: str) -> Place:
        place = self._known.get(text)
        if place is not None:
            return place
        place = _read(_clean(text)) or UNKNOWN
        with self._lock:
            if text not in self._known:
                if place is UNKNOWN:
                    log.warning(
                        "unknown place %r: kept as given; add it to pricing/place_table.py", text
                    )
                if len(self._known) < _MAX_REMEMBERED:
                    self._known[text] = place
        return place


_PLACES = _Places()


def resolve_place(text: str) -> Place:
    """The place a provider's region text names; `UNKNOWN` (logged once) when nobody knows it."""
    return _PLACES.resolve(text)


@dataclass(frozen=True, slots=True)
class RegionNeedle:
    """What a `region=` filter means: a continent, a country, or text in the region's name."""

    text: str
    continent: str | None = None
    country: str | None = None

    def matches(self, region: str, country: str | None, continent: str | None) -> bool:
        if self.continent is not None:
            return continent == self.continent
        if self.country is not None:
            return country == self.country
        return self.text in region.casefold()


@lru_cache(maxsize=1024)
def region_needle(term: str) -> RegionNeedle:
    """Read a user's `region=` term (see the module's docstring for the rules)."""
    key = _clean(term)
    if key in CONTINENT_WORDS:
        return RegionNeedle(key, continent=CONTINENT_WORDS[key])
    code = country_code(key)
    if code is not None:
        return RegionNeedle(key, country=code)
    return RegionNeedle(term.strip().casefold())
