"""Generative scoring's answer matching (eval/answers.py), rule by rule, and the lettered prompt it reads."""

from __future__ import annotations

import pytest

from salad_core.eval.answers import match_answer
from salad_core.eval.lanes import prompt_segments
from salad_core.tasks import Item

CHOICES = ("Paris", "Lyon", "New South Wales", "Wales")


@pytest.mark.parametrize("answer, expected", [
    ("B", 1), ("(C)", 2), ("B. Lyon", 1), ("D: Wales", 3), ("Answer: A", 0), ("The answer is A.", 0),
    ("The answer is Paris.", 0), ("paris!", 0), ("It is New South Wales", 2), ("  lyon  ", 1),
])
def test_a_letter_or_one_options_text_is_matched(answer, expected):
    assert match_answer(answer, CHOICES) == expected


@pytest.mark.parametrize("answer", ["A city in France", "E", "Wales or Lyon", "", "I do not know", "Parisian"])
def test_an_answer_naming_no_option_or_several_fails_to_parse(answer):
    assert match_answer(answer, CHOICES) is None


def test_letters_past_the_last_option_do_not_count():
    assert match_answer("C", ("yes", "no")) is None and match_answer("B", ("yes", "no")) == 1


def test_the_generative_prompt_letters_every_option_and_answers_examples_by_letter():
    shot = Item("t", "1", "fewshot", "Two plus two?", ("three", "four"), 1, "math")
    segments = prompt_segments([shot], "Capital of France?", choices=("Lyon", "Paris"))
    assert segments[0].text == "Question: Two plus two?\nA. three\nB. four\nAnswer: B\n\nQuestion:"
    assert segments[1].text == " Capital of France?" and segments[2].text == "\nA. Lyon\nB. Paris\nAnswer:"
    plain = prompt_segments([shot], "Capital of France?")
    assert plain[0].text == "Question: Two plus two?\nAnswer: four\n\nQuestion:" and plain[2].text == "\nAnswer:"
