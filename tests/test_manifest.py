"""JSONL manifests: good lines load, each bad line is reported by number with what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salad_core.assets import AssetError
from salad_core.tasks import Item, ManifestError, load_manifest
from salad_core.tasks.manifest import default_doc_id

REPO = Path(__file__).resolve().parent.parent


def _good(**overrides) -> str:
    record = {"task": "t", "question": "Which planet is red?", "choices": ["Venus", "Mars"], "answer": 1}
    record.update(overrides)
    return json.dumps(record)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "q1.wav").write_bytes(b"RIFF")
    lines = [
        "# a comment",                                                              # 1
        _good(doc_id="a", audio="clips/q1.wav", domain="science", split="dev"),     # 2 good
        "",                                                                         # 3
        '{"task": "t", "question": "Broken", ',                                     # 4 invalid JSON
        _good(doc_id="b", answer=2),                                                # 5 out of range
        json.dumps({"task": "t", "question": "No choices?", "answer": 0}),          # 6 missing field
        _good(doc_id="c", answer="1"),                                              # 7 wrong type
        _good(doc_id="d", choices=["only one"], answer=0),                          # 8 too few choices
        _good(doc_id="e", audio="clips/missing.wav"),                               # 9 audio missing
        _good(doc_id="a", question="Same id again?"),                               # 10 duplicate doc_id
        _good(doc_id="f", audoi="clips/q1.wav"),                                    # 11 unknown field
        _good(doc_id="g", answer=True),                                             # 12 bool answer
        _good(doc_id="h", split="train"),                                           # 13 bad split
        "[1, 2]",                                                                   # 14 not an object
        _good(doc_id="i", choices=["Mars", "Mars"], answer=0),                      # 15 repeated choice
        _good(task="other", doc_id="a"),                                            # 16 good: other task
        _good(question="Which planet is largest?", choices=["Jupiter", "Mars", "Venus"], answer=0),  # 17 good
    ]
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


EXPECTED_ERRORS = {
    4: "invalid JSON",
    5: "outside 0..1",
    6: "missing field(s) choices",
    7: "'answer' must be an integer",
    8: "at least 2 options",
    9: "audio file 'clips/missing.wav' does not exist",
    10: "duplicate doc_id 'a' in task 't' (first used on line 2)",
    11: "unknown field(s) audoi",
    12: "'answer' must be an integer",
    13: "'split' must be one of",
    14: "expected a JSON object, got list",
    15: "repeats an option",
}


def test_good_lines_load_and_bad_lines_are_reported(mixed: Path):
    result = load_manifest(mixed)
    assert [it.item_id for it in result.items] == ["t:a", "other:a", f"t:{default_doc_id('Which planet is largest?')}"]
    assert {e.line for e in result.errors} == set(EXPECTED_ERRORS)
    for error in result.errors:
        assert isinstance(error, ManifestError)
        assert EXPECTED_ERRORS[error.line] in error.message, (error.line, error.message)
        assert str(error).startswith(f"line {error.line}: ")


def test_fields_are_read_and_defaulted(mixed: Path):
    first, _, third = load_manifest(mixed).items
    assert first == Item(
        task="t", doc_id="a", split="dev", question="Which planet is red?", choices=("Venus", "Mars"),
        answer=1, domain="science", audio=str((mixed.parent / "clips" / "q1.wav").resolve()),
    )
    assert third.split == "test" and third.domain == "general" and third.audio is None
    assert third.choices == ("Jupiter", "Mars", "Venus") and third.target == "Jupiter"


def test_default_doc_id_follows_the_question_not_the_line(tmp_path: Path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    a, b = _good(question="First?"), _good(question="Second?")
    one.write_text(f"{a}\n{b}\n")
    two.write_text(f"# reordered\n{b}\n\n{a}\n")
    ids = lambda path: sorted(it.doc_id for it in load_manifest(path).items)
    assert ids(one) == ids(two) and len(set(ids(one))) == 2


def test_absolute_audio_paths_are_kept(tmp_path: Path):
    clip = tmp_path / "elsewhere.wav"
    clip.write_bytes(b"RIFF")
    path = tmp_path / "sub" / "m.jsonl"
    path.parent.mkdir()
    path.write_text(_good(audio=str(clip)) + "\n")
    assert load_manifest(path).items[0].audio == str(clip.resolve())


def test_empty_and_comment_only_files_raise(tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("  \n")
    with pytest.raises(AssetError, match="is empty"):
        load_manifest(empty)
    comments = tmp_path / "comments.jsonl"
    comments.write_text("# nothing yet\n\n")
    with pytest.raises(AssetError, match="has no items"):
        load_manifest(comments)
    with pytest.raises(AssetError, match="does not exist"):
        load_manifest(tmp_path / "nope.jsonl")


def test_example_manifest_in_docs_loads():
    result = load_manifest(REPO / "docs" / "example_manifest.jsonl")
    assert result.errors == [] and len(result.items) == 3
    assert result.tasks() == ["my_quiz"] and sum(i.task == "my_quiz" for i in result.items) == 3
    assert [it.target for it in result.items] == ["Mars", "100", "the Indian Ocean"]
