"""`salad eval` end to end on the real offline `smol` preset: one JSON object on stdout, every lane in the store.

One CLI run (about a minute on 2 cores) covers a builtin task, a manifest with a real recording, a TTS-spoken
manifest item and a broken manifest line; the assertions below read its JSON and its store.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from salad_core.assets import AssetError
from salad_core.store import Store

FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures" / "speech"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    shutil.copy(FIXTURES / "goforward.wav", tmp / "goforward.wav")
    lines = [
        {"task": "mine", "doc_id": "robot", "question": "go forward ten meters", "audio": "goforward.wav",
         "choices": ["a robot command", "a weather report", "a recipe", "a poem"], "answer": 0},
        {"task": "mine", "doc_id": "sky", "question": "What colour is a clear daytime sky?",
         "choices": ["blue", "green", "red", "black"], "answer": 0},
    ]
    manifest = tmp / "items.jsonl"
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"task": "mine", "question": "broken"\n')
    db = tmp / "store.duckdb"
    cmd = [sys.executable, "-m", "salad_core.cli", "eval", "--json", "--tasks", "arithmetic", "--limit", "2",
           "--probe-limit", "1", "--corpus-docs", "6", "--manifest", str(manifest), "--db", str(db),
           "--adapter", "none"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, db


def test_stdout_is_exactly_one_json_object(run):
    done, _ = run
    result = json.loads(done.stdout)  # fails on any extra output
    assert set(result) >= {"run_id", "tasks", "F", "M", "item_F", "item_M", "corpus"}
    assert set(result["tasks"]) == {"arithmetic", "mine"}
    for row in result["tasks"].values():
        assert row["n"] == 2
        for key in ("text_acc_base", "text_acc", "speech_acc", "cascade_acc", "noaudio_acc"):
            assert 0.0 <= row[key] <= 1.0 and row["ci"][key][0] <= row[key] <= row["ci"][key][1]
        assert row["audio_gain"] == pytest.approx(row["speech_acc"] - row["noaudio_acc"])
        assert row["gap"] == pytest.approx(row["text_acc_base"] - row["speech_acc"])
        assert row["gap"] == pytest.approx(row["forgetting"] + row["misalignment"])
        assert row["forgetting"] == 0.0  # the smol preset's LLM is frozen: it reads text as the original does
        assert row["ci"]["gap"][0] <= row["gap"] <= row["ci"]["gap"][1]
    assert result["F"] == pytest.approx(0.0, abs=1e-6)  # frozen LLM: no forgetting at the token level either
    assert result["item_F"] == pytest.approx(0.0, abs=1e-6)
    assert result["M"] > 0.1 and result["item_M"] > 0.1  # an untrained adapter is far from the text
    # corpus F and M: on the broad held-out probe set (WordNet glosses in a held-out voice), with intervals
    broad = result["corpus"]["broad text"]
    assert broad["M"] == pytest.approx(result["M"]) and broad["ci"]["M"][0] <= broad["M"] <= broad["ci"]["M"][1]
    assert broad["m_tokens"] >= 100  # six documents of three glosses, about half of them heard


def test_the_broken_manifest_line_is_reported_with_its_number(run):
    done, _ = run
    assert "line 3" in done.stderr


def test_every_lane_of_every_item_is_stored(run):
    done, db = run
    run_id = json.loads(done.stdout)["run_id"]
    store = Store(db)
    assert store.runs().set_index("run_id").loc[run_id, "status"] == "done"
    paired = store.paired_items(run_id)
    assert len(paired) == 4
    for lane in ("base_text", "text", "speech", "cascade", "noaudio"):
        assert paired[f"{lane}_pred"].notna().all()
    recorded = paired.set_index("doc_id").loc["robot"]
    assert recorded["tts_engine"] == "recording" and recorded["audio_path"].endswith("goforward.wav")
    assert "forward" in recorded["cascade_transcript"].lower()
    spoken = paired.set_index("doc_id").loc["sky"]
    assert spoken["tts_engine"] == "flite"
    options = store.option_scores(run_id, recorded["item_id"])
    assert len(options) == 20  # 5 lanes x 4 options


def test_divergence_estimates_weight_tokens_and_bracket_the_value():
    from salad_core.eval.divergence import ProbeDivergence, aggregate, divergence_estimates

    parts = [ProbeDivergence(f_sum=0.1 * k, f_tokens=k, m_sum=float(k % 3), m_tokens=2) for k in range(1, 30)]
    est = divergence_estimates(parts, seed=0)
    pooled = aggregate(parts)
    assert est["F"].value == pytest.approx(pooled["F"]) == pytest.approx(0.1)
    assert est["F"].ci_low == pytest.approx(0.1) and est["F"].ci_high == pytest.approx(0.1)  # every item the same rate
    assert est["M"].value == pytest.approx(pooled["M"])
    assert est["M"].ci_low < est["M"].value < est["M"].ci_high and est["M"].n == 58
    assert np.isnan(divergence_estimates([], seed=0)["M"].value)


def test_world_voice_uses_the_worlds_own_spoken_questions(tmp_path):
    """`--voice world`: each nano-world item heard in its held-out evaluation voice, with the world's cached frames."""
    from salad_core.eval.config import EvalConfig
    from salad_core.eval.runner import run_eval
    from salad_core.tasks.registry import task_spec
    from salad_core.world import preset_world

    world = preset_world("nano")
    store = Store(tmp_path / "store.duckdb")
    result = run_eval(EvalConfig(preset="nano", tasks=["nano-animals"], voice="world", probe_limit=1,
                                 lanes=["base_text", "text", "speech"]), store)
    n_test = len(world.task_items("animals", "test"))
    assert result["tasks"]["nano-animals"]["n"] == n_test and result["voice"] == "world"
    audio = store.audio()
    assert len(audio) == n_test and audio["path"].str.startswith(f"world:{world.root.name}/").all()
    assert {f"{e}:{v}" for e, v in zip(audio["engine"], audio["voice"])} <= set(world.info()["eval_voices"])
    item = world.task_items("animals", "test")[0]
    spoken = task_spec(item.task).spoken(item)
    assert spoken[1]["frames"].shape[0] == world.clip(world.eval_clip(item.item_id))["frames"]
    np.testing.assert_allclose(spoken[0], world.audio(world.eval_clip(item.item_id)))
    from dashboard import data  # the gap page plays what the store names: the world's clip, not a file

    stored = audio["path"].iloc[0]
    np.testing.assert_allclose(data.item_audio(stored)["data"], world.audio(stored.split("/", 1)[1]))
    with pytest.raises(AssetError, match="Fix: rebuild"):
        data.item_audio(f"world:{world.root.name}-gone/q00000")
    with pytest.raises(FileNotFoundError):
        data.item_audio(str(tmp_path / "missing.wav"))


def test_the_cascade_reads_a_world_question_in_the_worlds_form():
    """Whisper writes "3" and capitals; the world's word-level LM reads "three": the cascade hands it the world's form,
    and WER counts the words the world wrote, not digits against number words."""
    from salad_core.eval.lanes import LaneScorer, PreparedItem
    from salad_core.tasks import Item
    from tests.tiny_models import tiny_salad

    class Whisper:
        def transcribe(self, audio):
            return "What is 3 plus 14?"

    item = Item("nano-arithmetic", "plus/3/14", "test", "what is three plus fourteen ?",
                ("seventeen", "eighteen", "sixteen", "seven"), 0, "arithmetic")
    prepared = PreparedItem(item, "nano-arithmetic@1/plus/3/14", np.zeros(16000, np.float32), "a")
    scorer = LaneScorer(tiny_salad(), Whisper())
    _, [cascade] = scorer.rows(prepared, [], ["cascade"], "acc_norm")
    assert (cascade["transcript"], cascade["wer"]) == ("what is three plus fourteen ?", 0.0)
    manifest = Item("my-task", "1", "test", "What is 3 plus 14?", ("17", "18"), 0, "math")
    _, [kept] = scorer.rows(PreparedItem(manifest, "my-task/1", np.zeros(16000, np.float32), "b"), [], ["cascade"],
                            "acc_norm")
    assert kept["transcript"] == "What is 3 plus 14?"  # other tasks read the transcript as Whisper wrote it


def test_the_broad_probe_set_is_held_out_spoken_and_cached(tmp_path, monkeypatch):
    from salad_core.eval import probes

    texts = probes.broad_probe_texts(4)
    assert len(texts) == 4 and all(len(t.split(". ")) >= 2 for t in texts)
    assert all(probes.is_broad_probe_text(sentence + ".") for t in texts for sentence in t.split(". ")[:1])
    first = probes.broad_probe_set("whisper-tiny.en", n_docs=4)
    assert len(first.docs) == 4 and all(any(s.clip_id for s in d.spans) for d in first.docs)
    assert {first.bank.clip(s.clip_id)["voice"] for d in first.docs for s in d.spans if s.clip_id} == {"flite:slt"}
    assert " ".join(s.text for s in first.docs[0].spans) == texts[0]  # the teacher's view is the text itself
    again = probes.broad_probe_set("whisper-tiny.en", n_docs=4)
    assert again.bank.root == first.bank.root  # built once, then read back


def test_a_world_llm_gets_its_worlds_probe_documents():
    from salad_core.eval import probes
    from salad_core.world import build_world

    world = build_world("nano", progress=False)
    probe_set = probes.probe_set_for("world:nano/lm-v3", "whisper-tiny.en")
    assert probe_set.name == "world:nano" and probe_set.tasks == {d.name: d.task for d in world.domains}
    assert {d.domain for d in probe_set.docs} == {d.name for d in world.domains}
    assert len(probes.probe_set_for("world:nano/lm-v3", "whisper-tiny.en", n_docs=3).docs) == 3  # --corpus-docs 3
    broad = probes.probe_set_for("HuggingFaceTB/SmolLM2-135M-Instruct", "whisper-tiny.en", n_docs=4)
    assert broad.name == "broad:4" and len(broad.docs) == 4


def test_the_noaudio_lane_hears_silence_as_long_as_the_question():
    from salad_core.eval.lanes import LaneScorer, PreparedItem
    from salad_core.tasks import Item
    from tests.tiny_models import tiny_salad

    model = tiny_salad()
    item = Item("nano-arithmetic", "plus/3/14", "test", "what is three plus fourteen ?",
                ("seventeen", "eighteen", "sixteen", "seven"), 0, "arithmetic")
    tone = (0.3 * np.sin(np.arange(12000) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    scorer = LaneScorer(model)

    def logprobs(audio, lane: str) -> list[float]:
        rows, _ = scorer.rows(PreparedItem(item, "x", audio, "a"), [], [lane], "acc_norm")
        return [r["logprob"] for r in rows]

    noaudio = logprobs(tone, "noaudio")
    assert noaudio == pytest.approx(logprobs(np.zeros_like(tone), "speech"))
    assert noaudio != pytest.approx(logprobs(tone, "speech"))  # the tone is heard, the silence not
    # nothing heard: neither the speech lane nor its floor
    assert scorer.rows(PreparedItem(item, "x", None, None), [], ["speech", "noaudio"], "acc_norm") == ([], [])
