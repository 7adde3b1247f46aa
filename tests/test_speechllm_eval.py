"""`salad eval --speech-llm`: every supported family, as a tiny random-weight model built here, evaluated like a
SaladModel on spoken items: the audio reaches it, the JSON contract comes back, corpus and item F and M are finite
where defined, generative scoring reports its parse failures, a dataset saved with `datasets` loads through --dataset,
and the Gap page and the explorer open the run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from salad_core.eval.config import EvalConfig
from salad_core.eval.runner import run_eval
from salad_core.speechllm.families import FAMILY_CLASSES, get_family
from salad_core.store import Store

HEADLINE = ("text_acc", "speech_acc", "noaudio_acc", "audio_gain", "cascade_acc", "misalignment", "gap")


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech-llms")
    return {name: get_family(name).tiny(root / name.replace(".", "_"), seed=0) for name in FAMILY_CLASSES}


@pytest.fixture(scope="module")
def spoken_manifest(tmp_path_factory):
    """Three questions, each with a recording (a different tone per question: the models are random anyway)."""
    folder = tmp_path_factory.mktemp("manifest")
    lines = []
    for j, (question, choices, answer) in enumerate([("What is two plus two?", ["three", "four", "five"], 1),
                                                     ("Which city is the capital of France?", ["Paris", "Lyon"], 0),
                                                     ("Which element has the symbol Fe?", ["iron", "gold", "tin"], 0)]):
        t = np.arange(int(16000 * (1.0 + 0.3 * j))) / 16000
        sf.write(folder / f"q{j}.wav", (0.3 * np.sin(2 * np.pi * (200 + 90 * j) * t)).astype(np.float32), 16000)
        lines.append(json.dumps({"task": "spoken", "question": question, "choices": choices, "answer": answer,
                                 "audio": f"q{j}.wav"}))
    (folder / "items.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "items.jsonl"


def _evaluate(folder, manifest, tmp_path, store: Store | None = None, **extra) -> tuple[dict, Store]:
    store = store or Store(tmp_path / "s.duckdb")
    config = EvalConfig(speech_llm=str(folder), manifest=str(manifest), tasks=[], k_shot=0, probe_limit=0,
                        asr="whisper-tiny.en", **{"corpus_docs": 2, **extra})
    return run_eval(config, store), store


@pytest.mark.parametrize("family", list(FAMILY_CLASSES))
def test_every_family_is_evaluated_on_every_lane_and_hears_its_audio(family, tiny_folders, spoken_manifest, tmp_path):
    result, store = _evaluate(tiny_folders[family], spoken_manifest, tmp_path)
    entry = result["tasks"]["spoken"]
    assert entry["n"] == 3 and all(k in entry for k in HEADLINE)
    multimodal = get_family(family).natively_multimodal
    assert (entry["text_acc_base"] is None and entry["forgetting"] is None) if multimodal else \
        (entry["text_acc_base"] is not None and entry["forgetting"] is not None)
    speech = store.query("SELECT item_id, choice_idx, logprob FROM predictions WHERE run_id = ? AND lane = 'speech' "
                         "ORDER BY item_id, choice_idx", [result["run_id"]])
    silence = store.query("SELECT item_id, choice_idx, logprob FROM predictions WHERE run_id = ? "
                          "AND lane = 'noaudio' ORDER BY item_id, choice_idx", [result["run_id"]])
    assert len(speech) == len(silence) == 8
    # the audio reaches the model: far above float32 rounding (~1e-6 here), though a random decoder barely listens
    assert np.abs(speech["logprob"] - silence["logprob"]).max() > 2e-5
    model = store.query("SELECT name, llm, adapter FROM models").iloc[0]
    assert model["name"] == str(tiny_folders[family]) and (model["llm"] is None) == multimodal


def text_llm_beside(folder, out):
    """A tiny text LLM that reads with the speech LLM's own tokenizer: the text LLM `--llm` names for a natively
    multimodal family, which has none of its own."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from salad_core.speechllm.tiny import seeded, text_config

    tokenizer = AutoTokenizer.from_pretrained(folder)
    with seeded(1):
        Qwen2ForCausalLM(Qwen2Config(**text_config(len(tokenizer)))).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.parametrize("family", list(FAMILY_CLASSES))
def test_corpus_and_item_f_and_m_of_every_family(family, tiny_folders, tmp_path):
    """The paper's F and M for a speech LLM: the broad probe documents read by its text LLM and by it (F), read and
    heard by it (M), every speech span heard where its processor takes audio between text spans, else the first."""
    llm = str(text_llm_beside(tiny_folders[family], tmp_path / "base")) if family == "qwen2.5-omni" else None
    config = EvalConfig(speech_llm=str(tiny_folders[family]), llm=llm, tasks=["arithmetic"], limit=1, k_shot=0,
                        probe_limit=2, corpus_docs=2, lanes=["base_text", "text", "speech"])
    result = run_eval(config, Store(tmp_path / "s.duckdb"))
    for name in ("F", "M", "item_F", "item_M"):
        assert result[name] is not None and math.isfinite(result[name]) and result[name] >= 0, name
    assert result["F"] > 0 and result["M"] > 0  # a random decoder beside a random text LLM, hearing random audio
    assert result["corpus"]["broad text"]["m_tokens"] > 0
    one_span = not get_family(family).audio_between_text
    assert result["corpus_heard"].startswith("the first speech span" if one_span else "every speech span")
    adapter = json.loads(Store(tmp_path / "s.duckdb").query("SELECT adapter FROM models")["adapter"][0])
    assert adapter["audio_between_text"] is not one_span


def test_f_needs_a_text_llm_that_reads_the_same_tokens(tiny_folders, tmp_path):
    config = EvalConfig(speech_llm=str(tiny_folders["qwen2.5-omni"]), tasks=["arithmetic"], limit=1, k_shot=0,
                        probe_limit=2, corpus_docs=2, lanes=["text", "speech"])
    result = run_eval(config, Store(tmp_path / "s.duckdb"))
    assert result["F"] is None and result["item_F"] is None  # natively multimodal and no --llm: F is not defined
    assert math.isfinite(result["M"]) and math.isfinite(result["item_M"])


def test_a_model_taking_one_audio_per_prompt_hears_the_first_span_and_m_counts_the_text_after_it(tiny_folders):
    from salad_core.eval.divergence import probe_divergence
    from salad_core.eval.probes import first_span_heard
    from salad_core.model.processing import Segment
    from salad_core.speechllm.model import load_speech_llm

    tone = (0.3 * np.sin(np.arange(8000) * 2 * np.pi * 300 / 16000)).astype(np.float32)
    doc = [Segment("The capital of"), Segment(" France", tone), Segment(" is Paris, and of"), Segment(" Peru", tone),
           Segment(" it is Lima.")]
    single = first_span_heard(doc)
    assert [s.is_speech for s in single] == [False, True, False, False, False] and single[3].text == " Peru"
    model = load_speech_llm(str(tiny_folders["audio-flamingo-3"]))
    paired, _ = model.pair(single)
    after = int((paired.student_pred >= paired.speech_spans[0][0]).sum())
    assert 0 < after < len(paired.student_pred)
    assert probe_divergence(model, single, after_speech=True).m_tokens == after
    assert probe_divergence(model, single).m_tokens == len(paired.student_pred)


@pytest.mark.usefixtures("isolated_app")
def test_generative_scoring_reports_parse_failures_per_lane(tiny_folders, spoken_manifest, tmp_path, monkeypatch):
    result, store = _evaluate(tiny_folders["qwen2-audio"], spoken_manifest, tmp_path, scoring="generate",
                              max_new_tokens=4, lanes=["text", "speech", "noaudio"])
    fails = result["tasks"]["spoken"]["parse_fail"]
    assert set(fails) == {"text", "speech", "noaudio"} and all(0 <= v <= 1 for v in fails.values())
    from salad_core.console import format_eval

    assert "matched to no option (counted wrong): text" in format_eval(result)
    rows = store.query("SELECT lane, answer_text, parse_fail, pred FROM outputs WHERE run_id = ?", [result["run_id"]])
    assert len(rows) == 9 and rows["answer_text"].notna().all()
    assert ((rows["pred"] == -1) == rows["parse_fail"]).all()
    assert store.query("SELECT count(*) AS n FROM predictions WHERE run_id = ?", [result["run_id"]])["n"][0] == 0
    from dashboard import views

    table = views.parse_failures(views.final_metrics(store.metrics(result["run_id"])))
    assert list(table.columns) == ["task", "text", "speech", "noaudio"]
    assert table.set_index("task").loc["spoken", "speech"] == pytest.approx(fails["speech"])
    from streamlit.testing.v1 import AppTest

    from salad_core.paths import REPO_ROOT

    at = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["store_path"] = str(store.path)
    gap = at.run()
    assert not gap.exception and any("generative scoring" in str(i.value) for i in gap.info)

    import salad_core.eval.lanes as lanes  # a model that always answers "B." is matched to the second option

    monkeypatch.setattr(lanes, "greedy_answer", lambda *a, **k: "B.")
    result, store = _evaluate(tiny_folders["qwen2-audio"], spoken_manifest, tmp_path / "b", scoring="generate",
                              lanes=["speech"])
    entry = result["tasks"]["spoken"]
    assert entry["parse_fail"] == {"speech": 0.0} and entry["speech_acc"] == pytest.approx(1 / 3)


def test_a_dataset_saved_with_datasets_loads_through_dataset(tiny_folders, spoken_manifest, tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = spoken_manifest.parent
    rows = {"prompt": ["What is two plus two?\nA. three\nB. four\nC. five",
                       "Which city is the capital of France?\nA. Lyon\nB. Paris"],
            "reference": ["B", "B"],
            "audio": [{"bytes": (folder / f"q{j}.wav").read_bytes(), "path": f"q{j}.wav"} for j in range(2)]}
    saved = tmp_path / "voicebench-like"
    datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(decode=False)).save_to_disk(str(saved))
    store = Store(tmp_path / "s.duckdb")
    config = EvalConfig(speech_llm=str(tiny_folders["granite-speech"]), dataset=f"hf:{saved}", tasks=[], k_shot=0,
                        probe_limit=0, lanes=["text", "speech", "noaudio"])
    result = run_eval(config, store)
    assert list(result["tasks"]) == ["voicebench-like-test"] and result["tasks"]["voicebench-like-test"]["n"] == 2
    items = store.query("SELECT question, choices, answer FROM items ORDER BY question")
    assert [json.loads(c) for c in items["choices"]] == [["three", "four", "five"], ["Lyon", "Paris"]]
    assert items["answer"].tolist() == [1, 1]


def test_an_unsupported_architecture_fails_at_once_naming_the_families(tmp_path):
    from salad_core.speechllm.model import load_speech_llm
    from tests.tiny_models import tiny_llm

    tiny_llm().save_pretrained(tmp_path / "llama")
    with pytest.raises(ValueError, match="Supported families.*qwen2-audio.*voxtral.*granite-speech.*qwen2.5-omni"):
        load_speech_llm(str(tmp_path / "llama"))


@pytest.mark.usefixtures("isolated_app")
def gap_page_on(store: Store, run_id: str):
    """The app on `store` with `run_id` picked in the sidebar: (the app, the Gap page as it opened, without error)."""
    from streamlit.testing.v1 import AppTest

    from salad_core.paths import REPO_ROOT

    at = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["store_path"] = str(store.path)
    at.run()
    at.sidebar.selectbox(key="sidebar_run").select(run_id)
    gap = at.run()
    assert not gap.exception and not gap.error
    return at, gap


def test_the_gap_page_and_the_explorer_open_a_speech_llm_run(tiny_folders, spoken_manifest, tmp_path):

    from salad_core.explore import sources
    from salad_core.explore.representations import ensure_representations

    result, store = _evaluate(tiny_folders["qwen2-audio"], spoken_manifest, tmp_path)
    ref = sources.find_model(store, f"eval:{tiny_folders['qwen2-audio']}")
    limit = 50  # the explorer page's default items per task
    entry = ensure_representations(ref, sources.load_item_set(f"run:{result['run_id']}@{limit}", store), progress=False)
    metrics = entry.metrics
    assert len(metrics) and np.isfinite(metrics["value"].astype(float)).all()

    at, gap = gap_page_on(store, result["run_id"])
    assert any("spoken" in str(df.value) for df in gap.dataframe)  # the task's row in the gap table
    assert not any("adapter" in str(w.value) for w in gap.warning)  # a speech LLM has no adapter to blame
    explorer = at.switch_page("../pages/explorer.py").run()
    assert not explorer.exception and not explorer.error
    assert explorer.selectbox(key="exp_model").value == ref.ref_id
    assert not any("not computed" in str(i.value) for i in explorer.info)  # the hidden states above are shown


@pytest.mark.usefixtures("isolated_app")
def test_the_pages_show_a_speech_llms_f_and_m_and_how_it_heard_them(tiny_folders, spoken_manifest, pipeline, tmp_path):
    """A speech LLM evaluated into a store of salad's own training runs: the Gap page shows its corpus F and M (and
    says when its family heard one span per document), the dynamics scatters place it beside the checkpoints."""
    import shutil



    store = Store(shutil.copy(pipeline.store.path, tmp_path / "with-llm.duckdb"))
    result, _ = _evaluate(tiny_folders["audio-flamingo-3"], spoken_manifest, tmp_path, store=store)
    at, gap = gap_page_on(store, result["run_id"])
    shown = {m.label: m.value for m in gap.metric}
    assert shown["M (KL, speech vs text)"] == f"{result['M']:.4g}" and shown["F (KL, text)"] == f"{result['F']:.4g}"
    assert any("takes one audio per prompt" in c.value for c in gap.caption)
    dynamics = at.switch_page("../pages/dynamics.py").run()
    assert not dynamics.exception and not dynamics.error
    scatters = [c.proto.spec for c in dynamics.get("plotly_chart") if "across checkpoints" in c.proto.spec]
    assert len(scatters) == 2 and all("speech LLMs (salad eval --speech-llm)" in spec for spec in scatters)
    assert all(f"audio-flamingo-3 ({result['run_id']})" in spec for spec in scatters)


@pytest.mark.parametrize("family", list(FAMILY_CLASSES))
def test_every_family_scores_in_bfloat16_as_on_a_gpu(family, tiny_folders):
    """A GPU loads speech LLMs in bfloat16: the features, the audio vectors and the text meet in that dtype."""
    import torch

    from salad_core.eval.lanes import LaneScorer, PreparedItem
    from salad_core.eval.model import EvaluatedModel
    from salad_core.speechllm.model import load_speech_llm
    from salad_core.tasks import Item

    model = load_speech_llm(str(tiny_folders[family]), dtype=torch.bfloat16)
    assert isinstance(model, EvaluatedModel)  # what the evaluation asks of every model it scores
    item = Item("t", "1", "test", "What is two plus two?", ("three", "four"), 1, "math")
    audio = (0.3 * np.sin(np.arange(24000) * 2 * np.pi * 220 / 16000)).astype(np.float32)
    lanes = ["text", "speech", "noaudio"] + (["base_text"] if model.base is not None else [])
    scorer = LaneScorer(model, None, max_new_tokens=3)
    predictions, outputs = scorer.rows(PreparedItem(item, "1", audio, "a"), [], lanes, "acc_norm")
    assert len(predictions) == 2 * len(lanes) and all(math.isfinite(r["logprob"]) for r in predictions)
    _, answered = scorer.rows(PreparedItem(item, "1", audio, "a"), [], lanes, "generate")
    assert [o["lane"] for o in answered] == lanes and all(isinstance(o["answer_text"], str) for o in answered)
