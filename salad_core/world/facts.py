"""The mini world's real-fact domains: capitals (countryinfo), elements (mendeleev) and a curated animal list.

Each builder returns tasked `Fact`s whose distractor tiers put the most plausible wrong answers first (capitals of
the same subregion, symbols of neighbouring elements), and, where the split needs them, background statements: other
relations of the same entities, so that an entity whose tasked facts are all held out for evaluation is still heard
in speech without its answers ("peru is in south america", "lima is a city in south america", "iron is in period
four"). `size` caps the number of entities (countries, elements, animals), chosen so that a small world is a fixed
subset of a large one (capitals: the most populous countries); 0 means all.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from salad_core.text import number_words, stable_hash, world_form
from salad_core.world.domains import Fact

MAX_NAME_WORDS = 3  # longer names ("saint vincent and the grenadines") inflate the vocabulary for one fact


def _subset(entities: list, key, size: int, seed: int) -> list:
    if size <= 0 or size >= len(entities):
        return list(entities)
    ranked = sorted(entities, key=lambda e: stable_hash(str(seed), "subset", key(e)))
    return sorted(ranked[:size], key=key)


# ---------------------------------------------------------------------------------------------------------------
# Capitals


def _countries(size: int = 0) -> list[tuple[str, str, str, str, str]]:
    """(country, capital, subregion, region, place), in the world's text form, one capital each, the capital not
    inside the name; with `size` > 0 the `size` most populous of them, sorted by name."""
    from salad_core.tasks.geography import load_countries, spoken_name

    rows = []
    for c in load_countries():
        if not c.capital or any(sep in c.capital for sep in "/,;("):
            continue
        name, capital = world_form(spoken_name(c.name).replace(".", "")), world_form(c.capital.replace(".", ""))
        bare = name.removeprefix("the ")
        if not name or not capital or bare in capital or capital in bare:
            continue
        if len(name.split()) > MAX_NAME_WORDS or len(capital.split()) > MAX_NAME_WORDS:
            continue
        rows.append((name, capital, c.subregion, c.region, world_form(c.place), c.population))
    # A capital shared by two entries (old and new names of one country) would make "... of which country ?" ambiguous.
    counts = Counter(row[1] for row in rows)
    rows = [r for r in rows if counts[r[1]] == 1]
    if 0 < size < len(rows):
        rows = sorted(sorted(rows, key=lambda r: (-r[5], r[0]))[:size])
    return [r[:5] for r in rows]


def capital_facts(size: int, seed: int) -> list[Fact]:
    """Two facts per country, one group: its capital, and the country a capital belongs to."""
    rows = _countries(size)
    by_sub: dict[str, list[tuple[str, str]]] = defaultdict(list)
    by_region: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, capital, sub, region, _ in rows:
        by_sub[sub].append((name, capital))
        by_region[region].append((name, capital))
    every = [(r[0], r[1]) for r in rows]
    facts = []
    for name, capital, sub, region, _ in rows:
        tiers = [by_sub[sub], by_region[region], every]
        statements = (f"the capital of {name} is {capital} .", f"{capital} is the capital of {name} .")
        facts.append(Fact(f"capital/{name}", statements, f"what is the capital of {name} ?", capital,
                          tuple(tuple(c for _, c in t) for t in tiers), f"country/{name}", (name,), name,
                          cues=("capital",)))
        facts.append(Fact(f"country/{capital}", statements[::-1], f"{capital} is the capital of which country ?",
                          name, tuple(tuple(n for n, _ in t) for t in tiers), f"country/{name}", (capital,), name,
                          cues=("capital",)))
    return facts


def capital_background(size: int, seed: int) -> list[str]:
    """Where each country and each capital lie: the names heard without the capital relation."""
    out = []
    for name, capital, _, _, place in _countries(size):
        out += [f"{name} is in {place} .", f"{capital} is a city in {place} ."]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Elements


def spelled(symbol: str) -> str:
    """A chemical symbol as its letters, the way it is read aloud: "Fe" -> "f e"."""
    return " ".join(symbol.lower())


PERIOD_ENDS = (2, 10, 18, 36, 54, 86, 118)  # the last atomic number of each period


def period(number: int) -> int:
    return next(i + 1 for i, end in enumerate(PERIOD_ENDS) if number <= end)


def _elements(size: int, seed: int) -> tuple[list, list]:
    from salad_core.tasks.elements import load_elements

    every = load_elements()
    return every, _subset(every, lambda e: e.name, size, seed)


def element_facts(size: int, seed: int) -> list[Fact]:
    """Three facts per element, each its own group: its symbol (spelled), atomic number (in words), family."""
    every, chosen = _elements(size, seed)
    families = sorted({e.family for e in every if e.family})
    facts = []
    for e in chosen:
        near = [x for x in every if 0 < abs(x.number - e.number) <= 3]
        initial = [x for x in every if x.symbol[0] == e.symbol[0] and x is not e]
        symbols = (tuple(spelled(x.symbol) for x in near + initial), tuple(spelled(x.symbol) for x in every))
        facts.append(Fact(f"symbol/{e.name}", (f"the symbol of {e.name} is {spelled(e.symbol)} .",),
                          f"what is the symbol of {e.name} ?", spelled(e.symbol), symbols, f"symbol/{e.name}",
                          (e.name,), e.name, cues=("symbol",)))
        numbers = tuple(number_words(e.number + d) for d in (-1, 1, -2, 2, -3, 3, 10, -10) if e.number + d > 0)
        facts.append(Fact(f"number/{e.name}", (f"the atomic number of {e.name} is {number_words(e.number)} .",),
                          f"what is the atomic number of {e.name} ?", number_words(e.number), (numbers,),
                          f"number/{e.name}", (e.name,), e.name, cues=("atomic number",)))
        if e.family:
            nearby = [x.family for x in sorted(every, key=lambda x: abs(x.number - e.number)) if x.family != e.family]
            facts.append(Fact(f"family/{e.name}", (f"{e.name} is one of the {e.family} .",),
                              f"which family of elements is {e.name} in ?", e.family,
                              (tuple(dict.fromkeys(nearby)), tuple(families)), f"family/{e.name}", (e.name,), e.name,
                              cues=("family", "one of the")))
    return facts


def element_background(size: int, seed: int) -> list[str]:
    """Each element's period: its name heard without any of its tasked facts."""
    return [f"{e.name} is in period {number_words(period(e.number))} ." for e in _elements(size, seed)[1]]


# ---------------------------------------------------------------------------------------------------------------
# Animals

# Where an animal lives, as the phrase reads after "lives".
HABITATS = {"farm": "on the farm", "house": "in the house", "forest": "in the forest", "jungle": "in the jungle",
            "grassland": "in the grassland", "desert": "in the desert", "ocean": "in the ocean",
            "river": "in the river", "ice": "on the ice", "mountains": "in the mountains"}
LEGS = {0: "no", 2: "two", 4: "four", 6: "six", 8: "eight"}
FOODS = ("grass", "leaves", "fruit", "seeds", "meat", "fish", "insects", "plankton", "nectar")

# name: (class, habitat, legs, food). Curated so that each answer is the textbook one (food: the main one).
ANIMALS: dict[str, tuple[str, str, int, str]] = {
    "cow": ("mammal", "farm", 4, "grass"), "horse": ("mammal", "farm", 4, "grass"),
    "pig": ("mammal", "farm", 4, "seeds"), "sheep": ("mammal", "farm", 4, "grass"),
    "goat": ("mammal", "farm", 4, "leaves"), "donkey": ("mammal", "farm", 4, "grass"),
    "dog": ("mammal", "house", 4, "meat"), "cat": ("mammal", "house", 4, "meat"),
    "hamster": ("mammal", "house", 4, "seeds"), "lion": ("mammal", "grassland", 4, "meat"),
    "zebra": ("mammal", "grassland", 4, "grass"), "giraffe": ("mammal", "grassland", 4, "leaves"),
    "elephant": ("mammal", "grassland", 4, "leaves"), "rhino": ("mammal", "grassland", 4, "grass"),
    "cheetah": ("mammal", "grassland", 4, "meat"), "tiger": ("mammal", "jungle", 4, "meat"),
    "leopard": ("mammal", "jungle", 4, "meat"), "jaguar": ("mammal", "jungle", 4, "meat"),
    "bear": ("mammal", "forest", 4, "fruit"), "wolf": ("mammal", "forest", 4, "meat"),
    "fox": ("mammal", "forest", 4, "meat"), "deer": ("mammal", "forest", 4, "leaves"),
    "squirrel": ("mammal", "forest", 4, "seeds"), "moose": ("mammal", "forest", 4, "leaves"),
    "badger": ("mammal", "forest", 4, "insects"), "hedgehog": ("mammal", "forest", 4, "insects"),
    "camel": ("mammal", "desert", 4, "leaves"), "yak": ("mammal", "mountains", 4, "grass"),
    "beaver": ("mammal", "river", 4, "leaves"), "otter": ("mammal", "river", 4, "fish"),
    "hippo": ("mammal", "river", 4, "grass"), "whale": ("mammal", "ocean", 0, "plankton"),
    "dolphin": ("mammal", "ocean", 0, "fish"), "walrus": ("mammal", "ice", 0, "fish"),
    "bat": ("mammal", "forest", 2, "insects"), "polar bear": ("mammal", "ice", 4, "meat"),
    "chicken": ("bird", "farm", 2, "seeds"), "goose": ("bird", "farm", 2, "grass"),
    "turkey": ("bird", "farm", 2, "seeds"), "duck": ("bird", "river", 2, "seeds"),
    "swan": ("bird", "river", 2, "leaves"), "heron": ("bird", "river", 2, "fish"),
    "eagle": ("bird", "mountains", 2, "meat"), "owl": ("bird", "forest", 2, "meat"),
    "woodpecker": ("bird", "forest", 2, "insects"), "parrot": ("bird", "jungle", 2, "fruit"),
    "toucan": ("bird", "jungle", 2, "fruit"), "penguin": ("bird", "ice", 2, "fish"),
    "ostrich": ("bird", "grassland", 2, "seeds"), "canary": ("bird", "house", 2, "seeds"),
    "albatross": ("bird", "ocean", 2, "fish"), "shark": ("fish", "ocean", 0, "fish"),
    "tuna": ("fish", "ocean", 0, "fish"), "cod": ("fish", "ocean", 0, "fish"),
    "swordfish": ("fish", "ocean", 0, "fish"), "salmon": ("fish", "river", 0, "insects"),
    "trout": ("fish", "river", 0, "insects"), "carp": ("fish", "river", 0, "leaves"),
    "catfish": ("fish", "river", 0, "insects"), "goldfish": ("fish", "house", 0, "plankton"),
    "snake": ("reptile", "jungle", 0, "meat"), "rattlesnake": ("reptile", "desert", 0, "meat"),
    "lizard": ("reptile", "desert", 4, "insects"), "tortoise": ("reptile", "desert", 4, "leaves"),
    "crocodile": ("reptile", "river", 4, "meat"), "alligator": ("reptile", "river", 4, "meat"),
    "iguana": ("reptile", "jungle", 4, "leaves"), "chameleon": ("reptile", "jungle", 4, "insects"),
    "frog": ("amphibian", "river", 4, "insects"), "toad": ("amphibian", "forest", 4, "insects"),
    "newt": ("amphibian", "river", 4, "insects"), "salamander": ("amphibian", "forest", 4, "insects"),
    "ant": ("insect", "forest", 6, "seeds"), "bee": ("insect", "farm", 6, "nectar"),
    "butterfly": ("insect", "grassland", 6, "nectar"), "beetle": ("insect", "forest", 6, "leaves"),
    "grasshopper": ("insect", "grassland", 6, "grass"), "fly": ("insect", "house", 6, "fruit"),
    "cockroach": ("insect", "house", 6, "seeds"), "termite": ("insect", "jungle", 6, "leaves"),
    "locust": ("insect", "desert", 6, "grass"), "spider": ("arachnid", "house", 8, "insects"),
    "scorpion": ("arachnid", "desert", 8, "insects"), "tarantula": ("arachnid", "jungle", 8, "insects"),
}


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def animal_facts(size: int, seed: int) -> list[Fact]:
    """Four facts per animal, each its own group: its class, where it lives, how many legs it has, what it eats."""
    classes = sorted({c for c, _, _, _ in ANIMALS.values()})
    facts = []
    for name in _subset(sorted(ANIMALS), lambda n: n, size, seed):
        cls, home, legs, food = ANIMALS[name]
        legs_word = "none" if legs == 0 else LEGS[legs]
        for relation, statement, question, answer, wrong, cues in (
            ("class", f"{_a(name)} is {_a(cls)} .", f"what kind of animal is {_a(name)} ?", cls,
             tuple(c for c in classes if c != cls), ("kind of animal", "is a", "is an")),
            ("home", f"{_a(name)} lives {HABITATS[home]} .", f"where does {_a(name)} live ?", home,
             tuple(h for h in HABITATS if h != home), ("live", "lives")),
            ("legs", f"{_a(name)} has {LEGS[legs]} legs .", f"how many legs does {_a(name)} have ?", legs_word,
             tuple("none" if n == 0 else w for n, w in LEGS.items() if n != legs), ("legs",)),
            ("food", f"{_a(name)} eats {food} .", f"what does {_a(name)} eat ?", food,
             tuple(f for f in FOODS if f != food), ("eat", "eats")),
        ):
            key = f"{relation}/{name}"
            forms = ("no",) if answer == "none" else ()  # "a whale has no legs ." says "none"
            facts.append(Fact(key, (statement,), question, answer, (wrong,), key, (name,), name, answer_forms=forms,
                              cues=cues))
    return facts
