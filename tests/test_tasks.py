"""The builtin task suite: sizes, item shape, fixed splits, spot-checked facts, missing-data errors."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter

import pytest

from salad_core.assets import MissingPackageError
from salad_core.tasks import SPLITS, UnknownTaskError, arithmetic, available_tasks, get_task, quiz, registered_tasks
from salad_core.tasks.choices import UNSPEAKABLE, assign_split
from salad_core.tasks.elements import load_elements
from salad_core.tasks.geography import load_countries

# Minimum items per split that each task promises (docs: salad_core/tasks/__init__.py).
MIN_SIZES = {
    "arithmetic": {"test": 200, "dev": 50, "fewshot": 5},
    "capitals": {"test": 150, "dev": 50, "fewshot": 5},
    "definitions": {"test": 400, "dev": 100, "fewshot": 5},
    "elements": {"test": 200, "dev": 50, "fewshot": 5},
    "freshqa": {"test": 80, "dev": 20, "fewshot": 5},
    "quiz": {"test": 150, "dev": 50, "fewshot": 5},
    "regions": {"test": 150, "dev": 50, "fewshot": 5},
}
TASKS = sorted(MIN_SIZES)


@pytest.fixture(scope="module")
def built() -> dict[str, dict[str, object]]:
    """doc_id -> Item for every builtin task, built once."""
    return {name: {it.doc_id: it for it in get_task(name).all_items()} for name in TASKS}


def test_all_builtin_tasks_are_registered_and_available_here():
    assert set(TASKS) <= set(registered_tasks())
    assert set(TASKS) <= set(available_tasks())
    assert available_tasks() == sorted(available_tasks())


@pytest.mark.parametrize("name", TASKS)
def test_sizes_and_item_shape(name, built):
    items = list(built[name].values())
    counts = Counter(it.split for it in items)
    for split, minimum in MIN_SIZES[name].items():
        assert counts[split] >= minimum, f"{name}: {counts[split]} {split} items < {minimum}"
    assert set(counts) <= set(SPLITS)
    for it in items:
        assert it.task == name and it.item_id == f"{name}:{it.doc_id}"
        assert len(it.choices) == 4 and len({c.casefold() for c in it.choices}) == 4, it
        assert 0 <= it.answer < 4 and all(c.strip() for c in it.choices)
        assert it.question.endswith("?") and not UNSPEAKABLE & set(it.question), it.question
        assert it.domain and it.audio is None


@pytest.mark.parametrize("name", TASKS)
def test_answer_positions_are_balanced(name, built):
    positions = Counter(it.answer for it in built[name].values())
    total = sum(positions.values())
    assert all(0.15 <= positions[p] / total <= 0.35 for p in range(4)), positions


@pytest.mark.parametrize("name", TASKS)
def test_a_fresh_build_gives_identical_items(name, built):
    again = {it.doc_id: it for it in get_task(name).spec.build()}
    assert again == built[name]


def test_adding_items_keeps_existing_splits_and_choices(monkeypatch, built):
    monkeypatch.setattr(arithmetic, "PER_OPERATION", arithmetic.PER_OPERATION + 15)
    bigger = {it.doc_id: it for it in arithmetic.build_arithmetic()}
    assert len(bigger) == len(built["arithmetic"]) + 4 * 15
    assert all(bigger[doc_id] == item for doc_id, item in built["arithmetic"].items())


def test_split_comes_from_the_doc_id_alone():
    assert assign_split("t", "x/1") == assign_split("t", "x/1")
    splits = Counter(assign_split("t", f"x/{i}") for i in range(4000))
    assert 0.03 < splits["fewshot"] / 4000 < 0.07 and 0.22 < splits["dev"] / 4000 < 0.28


def test_items_order_limit_and_split_filter():
    task = get_task("capitals")
    test = task.items("test")
    assert task.items("test", limit=10) == test[:10] and task.items("test") == test
    assert task.items(limit=0) == []
    assert {it.split for it in task.items("dev")} == {"dev"}
    with pytest.raises(ValueError, match="Unknown split 'train'"):
        task.items("train")


def test_fewshot_is_deterministic_and_from_its_own_pool():
    task = get_task("elements")
    shots = task.fewshot(5, seed=0)
    assert shots == task.fewshot(5, seed=0) and len(shots) == 5
    assert all(it.split == "fewshot" for it in shots)
    others = {it.doc_id for s in ("dev", "test") for it in task.items(s)}
    assert not {it.doc_id for it in shots} & others
    assert len({tuple(it.doc_id for it in task.fewshot(5, seed=s)) for s in range(5)}) > 1
    with pytest.raises(ValueError, match="few-shot items"):
        task.fewshot(10_000)


def test_facts_geography(built):
    france = built["capitals"]["capitals/France"]
    assert france.question == "What is the capital of France?" and france.target == "Paris"
    assert built["regions"]["regions/France"].target == "Europe"
    assert built["regions"]["regions/Japan"].target == "Asia"
    assert built["regions"]["regions/United Kingdom"].question == "In which region of the world is the United Kingdom?"
    region_of_capital = {c.capital: c.region for c in load_countries() if c.capital}
    # France's wrong options are European capitals (same subregion first, then same region).
    assert {region_of_capital[c] for c in france.choices} == {"Europe"}


def test_facts_elements(built):
    items = built["elements"]
    iron = items["symbol/iron"]
    assert iron.question == "What is the chemical symbol of iron?" and iron.target == "Fe"
    assert items["number/26"].target == "iron" and items["number/79"].target == "gold"
    assert items["family/neon"].target == "noble gases"
    numbers = {e.symbol: e.number for e in load_elements()}
    wrong = [c for c in iron.choices if c != "Fe"]
    assert all(abs(numbers[c] - 26) <= 3 or c.startswith("I") for c in wrong), wrong


def test_facts_arithmetic(built):
    seven_plus_five = arithmetic.arithmetic_item(7, "plus", 5)
    assert seven_plus_five.question == "What is 7 plus 5?" and seven_plus_five.target == "12"
    assert arithmetic.arithmetic_item(56, "divided by", 8).target == "7"
    for it in built["arithmetic"].values():
        a, op, b = re.fullmatch(r"What is (\d+) (plus|minus|times|divided by) (\d+)\?", it.question).groups()
        a, b = int(a), int(b)
        expected = {"plus": a + b, "minus": a - b, "times": a * b, "divided by": a // b}[op]
        assert it.target == str(expected) and (op != "divided by" or a % b == 0)
        assert all(abs(int(c) - expected) <= max(11, a, b) for c in it.choices), it


def test_facts_quiz(built):
    items = built["quiz"]
    assert items["state-capital/California"].target == "Sacramento"
    assert items["capital-state/Austin"].target == "Texas"
    assert items["abbreviation/Alaska"].target == "AK"
    assert items["successor/George Washington"].target == "John Adams"
    assert items["took-office/1861"].target == "Abraham Lincoln"
    assert items["baby/kangaroo"].target == "joey"
    assert "Grover Cleveland" not in {d.split("/", 1)[1] for d in items if d.startswith("successor/")}
    assert "baby/fox" not in items  # listed under two baby names: left out


def test_quiz_pattern_syntax():
    assert quiz.canonical("{G{eorge} }Washington") == "George Washington"
    assert quiz.canonical("{G{rover} }Cleveland{ (1st term)}") == "Grover Cleveland"
    assert quiz.canonical("Andorra la V[ell|iej]a") == "Andorra la Vella"
    assert quiz.canonical(r"a\:b|c") == "a:b"
    assert quiz.alternatives("colt|foal") == ["colt", "foal"]
    assert quiz.split_top("Cal{if{ornia}}|CA:Sacramento:CA", ":") == ["Cal{if{ornia}}|CA", "Sacramento", "CA"]


def test_facts_definitions(built):
    items = built["definitions"]
    river = items["noun/river"]
    assert river.question == "Which word means: a large natural stream of water?" and river.target == "river"
    steal = items["verb/steal"]
    assert steal.question.startswith("Which word means: to take") and steal.target == "steal"
    for it in items.values():
        gloss_words = set(re.findall(r"[a-z]+", it.question.split(": ", 1)[1].lower()))
        assert it.target not in gloss_words and not gloss_words & set(it.choices), it


def test_facts_freshqa(built):
    by_question = {it.question: it for it in built["freshqa"].values()}
    assert by_question["Who painted The Starry Night?"].target == "Vincent van Gogh"
    assert by_question["On what date did the Berlin Wall fall?"].target == "November 9, 1989"
    year = by_question["What year did Japan bomb Pearl Harbor?"]
    assert year.target == "1941" and all(abs(int(c) - 1941) <= 10 for c in year.choices)
    assert not any(it.target.lower() in ("yes", "no") for it in built["freshqa"].values())


def test_unknown_task_names_the_registered_ones():
    with pytest.raises(UnknownTaskError) as err:
        get_task("capitols")
    assert isinstance(err.value, KeyError)
    assert "capitols" in str(err.value) and "capitals" in str(err.value)


def test_missing_debian_data_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("SALAD_QUIZ_DIR", str(tmp_path))
    monkeypatch.setenv("SALAD_WORDNET_DIR", str(tmp_path))
    assert "quiz" not in available_tasks() and "definitions" not in available_tasks()
    assert "capitals" in available_tasks()
    with pytest.raises(MissingPackageError, match=r"bsdgames.*apt-get install bsdgames"):
        get_task("quiz")
    with pytest.raises(MissingPackageError, match="wordnet-base"):
        get_task("definitions")


def test_missing_pypi_data_is_reported(monkeypatch):
    real_find_spec = importlib.util.find_spec
    missing = {"inspect_evals", "mendeleev"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in missing else real_find_spec(n, *a))
    assert not {"freshqa", "elements"} & set(available_tasks())
    with pytest.raises(MissingPackageError, match=r"pip install --no-deps inspect-evals==0\.28\.0"):
        get_task("freshqa")
    with pytest.raises(MissingPackageError, match="mendeleev"):
        get_task("elements")
