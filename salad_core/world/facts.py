"""The mini world's real-fact domains: capitals (countryinfo), elements (mendeleev) and a curated animal list.

Each builder returns `Fact`s whose distractor tiers put the most plausible wrong answers first (capitals of the
same subregion, symbols of neighbouring elements). `size` caps the number of entities (countries, elements,
animals) taken, chosen by a stable hash so a small world is a fixed subset of a large one (capitals: the most
populous countries, whose names a speech recognizer has the best chance to know); 0 means all.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from salad_core.text import stable_hash
from salad_core.text import number_words, world_form
from salad_core.world.domains import Fact

MAX_NAME_WORDS = 3  # longer names ("saint vincent and the grenadines") inflate the vocabulary for one fact


def _subset(entities: list, key, size: int, seed: int) -> list:
    if size <= 0 or size >= len(entities):
        return list(entities)
    ranked = sorted(entities, key=lambda e: stable_hash(str(seed), "subset", key(e)))
    return sorted(ranked[:size], key=key)


# ---------------------------------------------------------------------------------------------------------------
# Capitals


def _countries(size: int = 0) -> list[tuple[str, str, str, str]]:
    """(country, capital, subregion, region), normalised, one capital each, capital not inside the name; with
    `size` > 0 the `size` most populous of them, sorted by name."""
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
        rows.append((name, capital, c.subregion, c.region, c.population))
    # A capital shared by two entries (old and new names of one country) would make "... of which country ?" ambiguous.
    counts = Counter(row[1] for row in rows)
    rows = [r for r in rows if counts[r[1]] == 1]
    if 0 < size < len(rows):
        rows = sorted(sorted(rows, key=lambda r: (-r[4], r[0]))[:size])
    return [r[:4] for r in rows]


def capital_facts(size: int, seed: int) -> list[Fact]:
    """Two facts per country: its capital, and the country a capital belongs to."""
    rows = _countries(size)
    by_sub: dict[str, list[tuple[str, str]]] = defaultdict(list)
    by_region: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, capital, sub, region in rows:
        by_sub[sub].append((name, capital))
        by_region[region].append((name, capital))
    every = [(r[0], r[1]) for r in rows]
    facts = []
    for name, capital, sub, region in rows:
        tiers = [by_sub[sub], by_region[region], every]
        statements = (f"the capital of {name} is {capital} .", f"{capital} is the capital of {name} .")
        facts.append(Fact(f"capital/{name}", statements, f"what is the capital of {name} ?", capital,
                          tuple(tuple(c for _, c in t) for t in tiers)))
        facts.append(Fact(f"country/{capital}", statements[::-1], f"{capital} is the capital of which country ?",
                          name, tuple(tuple(n for n, _ in t) for t in tiers)))
    return facts


# ---------------------------------------------------------------------------------------------------------------
# Elements


def spelled(symbol: str) -> str:
    """A chemical symbol as its letters, the way it is read aloud: "Fe" -> "f e"."""
    return " ".join(symbol.lower())


def element_facts(size: int, seed: int) -> list[Fact]:
    """Two facts per element: its symbol (spelled) and its atomic number (in words)."""
    from salad_core.tasks.elements import load_elements

    every = load_elements()
    chosen = _subset(every, lambda e: e.name, size, seed)
    facts = []
    for e in chosen:
        near = [x for x in every if 0 < abs(x.number - e.number) <= 3]
        initial = [x for x in every if x.symbol[0] == e.symbol[0] and x is not e]
        symbols = (tuple(spelled(x.symbol) for x in near + initial), tuple(spelled(x.symbol) for x in every))
        facts.append(Fact(f"symbol/{e.name}", (f"the symbol of {e.name} is {spelled(e.symbol)} .",),
                          f"what is the symbol of {e.name} ?", spelled(e.symbol), symbols))
        numbers = tuple(number_words(e.number + d) for d in (-1, 1, -2, 2, -3, 3, 10, -10) if e.number + d > 0)
        facts.append(Fact(f"number/{e.name}", (f"the atomic number of {e.name} is {number_words(e.number)} .",),
                          f"what is the atomic number of {e.name} ?", number_words(e.number), (numbers,)))
    return facts


# ---------------------------------------------------------------------------------------------------------------
# Animals

# Where an animal lives, as the phrase reads after "lives".
HABITATS = {"farm": "on the farm", "house": "in the house", "forest": "in the forest", "jungle": "in the jungle",
            "grassland": "in the grassland", "desert": "in the desert", "ocean": "in the ocean",
            "river": "in the river", "ice": "on the ice", "mountains": "in the mountains"}
LEGS = {0: "no", 2: "two", 4: "four", 6: "six", 8: "eight"}

# name: (class, habitat, legs). Curated so that each answer is the textbook one.
ANIMALS: dict[str, tuple[str, str, int]] = {
    "cow": ("mammal", "farm", 4), "horse": ("mammal", "farm", 4), "pig": ("mammal", "farm", 4),
    "sheep": ("mammal", "farm", 4), "goat": ("mammal", "farm", 4), "donkey": ("mammal", "farm", 4),
    "dog": ("mammal", "house", 4), "cat": ("mammal", "house", 4), "hamster": ("mammal", "house", 4),
    "lion": ("mammal", "grassland", 4), "zebra": ("mammal", "grassland", 4), "giraffe": ("mammal", "grassland", 4),
    "elephant": ("mammal", "grassland", 4), "rhino": ("mammal", "grassland", 4), "cheetah": ("mammal", "grassland", 4),
    "tiger": ("mammal", "jungle", 4), "leopard": ("mammal", "jungle", 4), "jaguar": ("mammal", "jungle", 4),
    "bear": ("mammal", "forest", 4), "wolf": ("mammal", "forest", 4), "fox": ("mammal", "forest", 4),
    "deer": ("mammal", "forest", 4), "squirrel": ("mammal", "forest", 4), "moose": ("mammal", "forest", 4),
    "badger": ("mammal", "forest", 4), "hedgehog": ("mammal", "forest", 4), "camel": ("mammal", "desert", 4),
    "yak": ("mammal", "mountains", 4), "beaver": ("mammal", "river", 4), "otter": ("mammal", "river", 4),
    "hippo": ("mammal", "river", 4), "whale": ("mammal", "ocean", 0), "dolphin": ("mammal", "ocean", 0),
    "walrus": ("mammal", "ice", 0), "bat": ("mammal", "forest", 2), "polar bear": ("mammal", "ice", 4),
    "chicken": ("bird", "farm", 2), "goose": ("bird", "farm", 2), "turkey": ("bird", "farm", 2),
    "duck": ("bird", "river", 2), "swan": ("bird", "river", 2), "heron": ("bird", "river", 2),
    "eagle": ("bird", "mountains", 2), "owl": ("bird", "forest", 2), "woodpecker": ("bird", "forest", 2),
    "parrot": ("bird", "jungle", 2), "toucan": ("bird", "jungle", 2), "penguin": ("bird", "ice", 2),
    "ostrich": ("bird", "grassland", 2), "canary": ("bird", "house", 2), "albatross": ("bird", "ocean", 2),
    "shark": ("fish", "ocean", 0), "tuna": ("fish", "ocean", 0), "cod": ("fish", "ocean", 0),
    "swordfish": ("fish", "ocean", 0), "salmon": ("fish", "river", 0), "trout": ("fish", "river", 0),
    "carp": ("fish", "river", 0), "catfish": ("fish", "river", 0), "goldfish": ("fish", "house", 0),
    "snake": ("reptile", "jungle", 0), "rattlesnake": ("reptile", "desert", 0), "lizard": ("reptile", "desert", 4),
    "tortoise": ("reptile", "desert", 4), "crocodile": ("reptile", "river", 4), "alligator": ("reptile", "river", 4),
    "iguana": ("reptile", "jungle", 4), "chameleon": ("reptile", "jungle", 4),
    "frog": ("amphibian", "river", 4), "toad": ("amphibian", "forest", 4), "newt": ("amphibian", "river", 4),
    "salamander": ("amphibian", "forest", 4),
    "ant": ("insect", "forest", 6), "bee": ("insect", "farm", 6), "butterfly": ("insect", "grassland", 6),
    "beetle": ("insect", "forest", 6), "grasshopper": ("insect", "grassland", 6), "fly": ("insect", "house", 6),
    "cockroach": ("insect", "house", 6), "termite": ("insect", "jungle", 6), "locust": ("insect", "desert", 6),
    "spider": ("arachnid", "house", 8), "scorpion": ("arachnid", "desert", 8), "tarantula": ("arachnid", "jungle", 8),
}


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def animal_facts(size: int, seed: int) -> list[Fact]:
    """Three facts per animal: its class, where it lives, how many legs it has."""
    classes = sorted({c for c, _, _ in ANIMALS.values()})
    facts = []
    for name in _subset(sorted(ANIMALS), lambda n: n, size, seed):
        cls, home, legs = ANIMALS[name]
        facts.append(Fact(f"class/{name}", (f"{_a(name)} is {_a(cls)} .",), f"what kind of animal is {_a(name)} ?",
                          cls, (tuple(c for c in classes if c != cls),)))
        facts.append(Fact(f"home/{name}", (f"{_a(name)} lives {HABITATS[home]} .",), f"where does {_a(name)} live ?",
                          home, (tuple(h for h in HABITATS if h != home),)))
        facts.append(Fact(f"legs/{name}", (f"{_a(name)} has {LEGS[legs]} legs .",),
                          f"how many legs does {_a(name)} have ?", "none" if legs == 0 else LEGS[legs],
                          (tuple("none" if n == 0 else w for n, w in LEGS.items() if n != legs),)))
    return facts
