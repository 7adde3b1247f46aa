"""`--dataset hf:...`: the spec, the column mapping (flags, known layouts, usual names) and each row's options and
answer; a saved dataset end to end is in tests/test_speechllm_eval.py."""

from __future__ import annotations

import pytest

from salad_core.assets import AssetError
from salad_core.tasks.hub import DatasetSpec, answer_index, column_map, options_of


def test_specs_name_the_dataset_its_config_and_split(tmp_path):
    assert DatasetSpec.parse("hf:hlt-lab/voicebench:mmsu@law") == DatasetSpec("hlt-lab/voicebench", "mmsu", "law")
    assert DatasetSpec.parse("hf:hlt-lab/voicebench:openbookqa") == DatasetSpec("hlt-lab/voicebench", "openbookqa",
                                                                                  "test")
    assert DatasetSpec.parse("hf:hlt-lab/voicebench:mmsu@law").task == "voicebench-mmsu-law"
    folder = tmp_path / "my:data"  # a folder is taken whole, even with a colon in its name
    folder.mkdir()
    assert DatasetSpec.parse(f"hf:{folder}@dev") == DatasetSpec(str(folder), None, "dev")
    for bad in ("hlt-lab/voicebench", "hf:"):
        with pytest.raises(ValueError, match="hf:ORG/NAME"):
            DatasetSpec.parse(bad)


def test_columns_come_from_flags_then_the_known_layout_then_the_usual_names():
    voicebench = DatasetSpec("hlt-lab/voicebench", "mmsu", "law")
    columns = ["audio", "prompt", "reference", "question_id"]
    assert column_map(voicebench, columns, {}) == {"question": "prompt", "choices": None, "answer": "reference",
                                                   "audio": "audio"}
    other = DatasetSpec("me/quiz", None, "test")
    assert column_map(other, ["question", "choices", "answer", "audio"], {})["choices"] == "choices"
    assert column_map(other, ["q", "a", "b", "gold", "wav"], {"question": "q", "choices": "a,b", "answer": "gold",
                                                              "audio": "wav"})["choices"] == "a,b"
    with pytest.raises(AssetError, match="--answer-column"):
        column_map(other, ["question", "audio"], {})
    with pytest.raises(AssetError, match="--choices-column"):
        column_map(other, ["question", "answer", "audio"], {"choices": "x,y"})


def test_options_come_from_their_columns_or_from_the_questions_lettered_lines():
    prompt = "Which gas do plants take in?\nA. oxygen\nB) carbon dioxide\n(C) helium"
    assert options_of({}, prompt, None) == (prompt, ("oxygen", "carbon dioxide", "helium"))
    assert options_of({"choices": ["x", "y"]}, "q", "choices")[1] == ("x", "y")
    assert options_of({"a": "x", "b": "y"}, "q", "a,b")[1] == ("x", "y")
    assert options_of({"choices": {"text": ["x", "y"], "label": ["A", "B"]}}, "q", "choices")[1] == ("x", "y")


@pytest.mark.parametrize("value, expected", [(1, 1), ("B", 1), ("b", 1), ("y", 1), ("2", 2)])
def test_an_answer_is_an_index_a_letter_or_an_options_text(value, expected):
    assert answer_index(value, ("x", "y", "z")) == expected


@pytest.mark.parametrize("value", [3, "D", "w", True, -1])
def test_an_answer_that_names_no_option_is_refused(value):
    with pytest.raises(ValueError):
        answer_index(value, ("x", "y", "z"))
