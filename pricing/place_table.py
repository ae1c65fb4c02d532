"""The places the broker knows beyond ISO 3166 itself: data only, read by pricing/places.py.

Country names and codes come from `pycountry`; this file adds what it lacks: the continent of
each country, the words for continents and markets, cloud region names, everyday country names
("USA", "UK", "Russia") and the cities providers name without a country. Keys are written
lower-case with single spaces, the form places.py cleans every spelling into.
"""

from __future__ import annotations

# Continent codes: NA, SA, EU, AS, AF, OC. Antarctica (AQ, BV, HM, TF) has none.
_BY_CONTINENT: dict[str, str] = {
    "AF": (
        "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA MG"
        " ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW"
    ),
    "AS": (
        "AE AF AM AZ BD BH BN BT CC CN CX GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW KZ LA LB LK"
        " MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TL TM TR TW UZ VN YE"
    ),
    "EU": (
        "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI"
        " LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA"
    ),
    "NA": (
        "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX NI"
        " PA PM PR SV SX TC TT UM US VC VG VI"
    ),
    "SA": "AR BO BR CL CO EC FK GF GS GY PE PY SR UY VE",
    "OC": "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV VU WF WS",
}
CONTINENT_OF: dict[str, str] = {
    country: continent for continent, codes in _BY_CONTINENT.items() for country in codes.split()
}

# What a continent is called; the two-letter codes win over the countries they collide with.
CONTINENT_WORDS: dict[str, str] = {
    "na": "NA",
    "north america": "NA",
    "northamerica": "NA",
    "sa": "SA",
    "south america": "SA",
    "southamerica": "SA",
    "latin america": "SA",
    "eu": "EU",
    "europe": "EU",
    "as": "AS",
    "asia": "AS",
    "af": "AF",
    "africa": "AF",
    "oc": "OC",
    "oceania": "OC",
}

# Markets providers name as regions, read as the continent that holds most of them.
REGION_WORDS: dict[str, str] = {
    "apac": "AS",
    "asia pacific": "AS",
    "asia-pacific": "AS",
    "emea": "EU",
    "latam": "SA",
    "amer": "NA",
    "americas": "NA",
}

# Spellings that mean "no particular place": known, with neither country nor continent.
NO_PLACE: frozenset[str] = frozenset(
    {"global", "worldwide", "any", "anywhere", "multi-region", "unknown", "local", "none"}
)

# Everyday names pycountry does not resolve (its names are the ISO ones).
COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "britain": "GB",
    "usa": "US",
    "america": "US",
    "united states of america": "US",
    "russia": "RU",
    "south korea": "KR",
    "korea": "KR",
    "north korea": "KP",
    "taiwan": "TW",
    "vietnam": "VN",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "czechia": "CZ",
    "czech republic": "CZ",
    "holland": "NL",
    "the netherlands": "NL",
    "turkey": "TR",
    "uae": "AE",
}

# Cloud region prefixes ("us-east-1", "europe-west4", "ap-southeast"): (country, continent).
CLOUD_PREFIXES: dict[str, tuple[str | None, str]] = {
    "us": ("US", "NA"),
    "usgov": ("US", "NA"),
    "ca": ("CA", "NA"),
    "northamerica": (None, "NA"),
    "mx": ("MX", "NA"),
    "sa": (None, "SA"),
    "southamerica": (None, "SA"),
    "eu": (None, "EU"),
    "europe": (None, "EU"),
    "uk": ("GB", "EU"),
    "ap": (None, "AS"),
    "asia": (None, "AS"),
    "jp": ("JP", "AS"),
    "in": ("IN", "AS"),
    "me": (None, "AS"),
    "il": ("IL", "AS"),
    "af": (None, "AF"),
    "australia": ("AU", "OC"),
    "au": ("AU", "OC"),
}

# Cloud regions whose prefix alone would say the wrong thing (AWS ap-southeast-2 is Sydney).
CLOUD_REGIONS: dict[str, str] = {
    "ap-southeast-2": "AU",
    "ap-southeast-4": "AU",
    "ap-northeast-1": "JP",
    "ap-northeast-2": "KR",
    "ap-northeast-3": "JP",
    "ap-south-1": "IN",
    "ap-east-1": "HK",
    "sa-east-1": "BR",
    "eu-north-1": "SE",
    "eu-west-1": "IE",
    "eu-west-2": "GB",
    "eu-west-3": "FR",
    "eu-central-1": "DE",
    "eu-south-1": "IT",
    "af-south-1": "ZA",
    "me-south-1": "BH",
    "me-central-1": "AE",
    "europe-west1": "BE",
    "europe-west2": "GB",
    "europe-west3": "DE",
    "europe-west4": "NL",
    "europe-north1": "FI",
    "asia-east1": "TW",
    "asia-northeast1": "JP",
    "asia-southeast1": "SG",
    "australia-southeast1": "AU",
    "southamerica-east1": "BR",
}

# Cities and states providers name without a country (Fluence's locations, AIVory's regions).
CITIES: dict[str, str] = {
    "paris": "FR",
    "frankfurt": "DE",
    "berlin": "DE",
    "munich": "DE",
    "bavaria": "DE",
    "amsterdam": "NL",
    "helsinki": "FI",
    "stockholm": "SE",
    "oslo": "NO",
    "warsaw": "PL",
    "prague": "CZ",
    "london": "GB",
    "dublin": "IE",
    "madrid": "ES",
    "milan": "IT",
    "zurich": "CH",
    "reykjavik": "IS",
    "bucharest": "RO",
    "ashburn": "US",
    "dallas": "US",
    "new york": "US",
    "chicago": "US",
    "los angeles": "US",
    "san jose": "US",
    "seattle": "US",
    "atlanta": "US",
    "miami": "US",
    "texas": "US",
    "oregon": "US",
    "virginia": "US",
    "utah": "US",
    "california": "US",
    "montreal": "CA",
    "quebec": "CA",
    "toronto": "CA",
    "vancouver": "CA",
    "sao paulo": "BR",
    "singapore": "SG",
    "tokyo": "JP",
    "osaka": "JP",
    "seoul": "KR",
    "hong kong": "HK",
    "mumbai": "IN",
    "sydney": "AU",
    "melbourne": "AU",
    "johannesburg": "ZA",
}
