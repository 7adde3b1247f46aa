"""Geography tasks from the `countryinfo` package: 'capitals' (country -> capital) and 'regions' (country -> region).

Capital distractors are capitals of countries in the same subregion first, then the same region, so a wrong
option is never an obvious outlier. Countries whose capital repeats the country's name (Singapore, Djibouti,
Guatemala City, ...) are left out: the question would give the answer away.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from salad_core.tasks.choices import make_item, pick_distractors
from salad_core.tasks.item import Item
from salad_core.tasks.registry import TaskSpec, register
from salad_core.tasks.sources import check_countryinfo, version_of

# countryinfo's region names, as they read after "in": "in Europe", "in the Americas".
REGION_NAMES = {
    "Africa": "Africa",
    "Americas": "the Americas",
    "Asia": "Asia",
    "Europe": "Europe",
    "Oceania": "Oceania",
}


@dataclass(frozen=True)
class Country:
    name: str
    capital: str | None
    region: str  # a key of REGION_NAMES
    subregion: str
    population: int = 0  # countryinfo's figure; 0 where it has none
    place: str = ""  # the part of the world it lies in, as narrowly as countryinfo says ("south america")


def load_countries() -> list[Country]:
    """Countries with a known region, sorted by name."""
    check_countryinfo()
    from countryinfo import CountryInfo

    countries = []
    for data in CountryInfo.all().values():
        region = data.get("region") or ""
        name = (data.get("name") or "").strip()
        if region not in REGION_NAMES or not reads_aloud(name):
            continue
        capital = _single_capital(data.get("capital"))
        subregion = (data.get("subregion") or "").strip().casefold()
        population = data.get("population")
        place = (data.get("intermediateregion") or data.get("subregion") or "").strip().casefold()
        countries.append(Country(name, capital, region, subregion, population if isinstance(population, int) else 0,
                                 place))
    return sorted(countries, key=lambda c: c.name)


def reads_aloud(name: str) -> bool:
    """Catalogue-style country names ("Virgin Islands, British", "Holy See (Vatican City State)") read badly aloud."""
    return bool(name) and not any(ch in name for ch in ",()")


def _single_capital(value: object) -> str | None:
    """countryinfo gives a string, or a list for countries with several capitals (left out: ambiguous)."""
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    return value.strip() or None if isinstance(value, str) else None


# Country names that take "the" inside a sentence: by a word they contain, or by name.
THE_WORDS = {"Republic", "Kingdom", "States", "State", "Islands", "Emirates", "Territory", "Lands", "Isle"}
THE_NAMES = {"Netherlands", "Philippines", "Maldives", "Comoros"}


def spoken_name(country: str) -> str:
    """The name as it reads inside a sentence: 'The Bahamas' -> 'the Bahamas', 'Czech Republic' -> 'the Czech...'."""
    if country.startswith("The "):
        return "t" + country[1:]
    if country in THE_NAMES or THE_WORDS & set(country.split()):
        return "the " + country
    return country


def _usable_capital(country: Country) -> bool:
    capital = country.capital
    if not capital or any(sep in capital for sep in "/,;("):
        return False
    return country.name.casefold() not in capital.casefold() and capital.casefold() not in country.name.casefold()


def build_capitals() -> list[Item]:
    countries = [c for c in load_countries() if _usable_capital(c)]
    by_subregion: dict[str, list[str]] = defaultdict(list)
    by_region: dict[str, list[str]] = defaultdict(list)
    for c in countries:
        by_subregion[c.subregion].append(c.capital)
        by_region[c.region].append(c.capital)
    every = [c.capital for c in countries]
    items = []
    for c in countries:
        doc_id = f"capitals/{c.name}"
        tiers = [by_subregion[c.subregion], by_region[c.region], every]
        wrong = pick_distractors("capitals", doc_id, c.capital, tiers)
        question = f"What is the capital of {spoken_name(c.name)}?"
        item = make_item("capitals", doc_id, question, c.capital, wrong, "geography")
        if item is not None:
            items.append(item)
    return items


def build_regions() -> list[Item]:
    items = []
    for c in load_countries():
        doc_id = f"regions/{c.name}"
        answer = REGION_NAMES[c.region]
        wrong = pick_distractors("regions", doc_id, answer, [REGION_NAMES.values()])
        question = f"In which region of the world is {spoken_name(c.name)}?"
        item = make_item("regions", doc_id, question, answer, wrong, "geography")
        if item is not None:
            items.append(item)
    return items


CAPITALS = register(
    TaskSpec(
        name="capitals",
        version="1.0",
        domain="geography",
        description="Name the capital of a country or territory; distractors are capitals from the same subregion.",
        source=version_of("countryinfo"),
        build=build_capitals,
        check=check_countryinfo,
    )
)

REGIONS = register(
    TaskSpec(
        name="regions",
        version="1.0",
        domain="geography",
        description="Name the world region (Africa, the Americas, Asia, Europe, Oceania) a country lies in.",
        source=version_of("countryinfo"),
        build=build_regions,
        check=check_countryinfo,
    )
)
