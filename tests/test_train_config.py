"""TrainConfig: per-preset recipes under explicit options, and the CLI's mapping of flags onto them."""

import pytest

from salad_core.errors import InputError
from salad_core.train.config import PRESET_RECIPES, TrainConfig


def test_preset_recipe_fills_what_is_not_given_and_flags_win():
    config = TrainConfig.for_preset("mini", alpha=0.0, lr_llm=1e-4, max_steps=None)
    assert config.align == "ctc-soft" and config.llm_mode == "full"  # from the recipe
    assert config.alpha == 0.0 and config.lr_llm == 1e-4  # given
    assert config.max_steps == PRESET_RECIPES["mini"]["max_steps"]  # None means "not given"
    recipe, plain = TrainConfig.for_preset("smol"), TrainConfig(preset="smol")  # outside its recipe: the defaults
    assert set(recipe.differences(plain, ignore=())) == set(PRESET_RECIPES["smol"])


def test_cli_flags_map_onto_the_recipe():
    from salad_core.cli import build_parser
    from salad_core.cli_training import train_config

    config = train_config(build_parser().parse_args(["train", "--preset", "mini", "--align", "none", "--alpha", "0.5"]))
    assert (config.preset, config.align, config.alpha, config.llm_mode) == ("mini", "none", 0.5, "full")
    assert train_config(build_parser().parse_args(["train", "--preset", "nano"])).align == "none"


def test_help_shows_each_fields_comment_with_its_default_and_preset_value():
    from dataclasses import fields

    from salad_core.cli import build_parser
    from salad_core.flags import field_comments
    from salad_core.select.config import SelectConfig

    comments = field_comments(TrainConfig)
    assert comments["alpha"].startswith("SALAD uses 1.0") and "kl_direction" in comments
    assert "loss" not in comments  # a comment on a line of its own documents no field
    for cls in (TrainConfig, SelectConfig):  # every flag says what it does
        assert {f.name for f in fields(cls)} <= set(field_comments(cls))
    train = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions
                 if a.dest == "align")
    assert train.help.startswith("none | ctc | ctc-soft") and "(default: none; preset mini: ctc-soft" in train.help


@pytest.mark.parametrize("options", [{}, {"alpha": 0.25, "align": "none", "replay_prob": 1 / 3 + 0.01},
                                     {"budget_hours": 2.5, "kl_direction": "reverse", "tag": "grid a", "seed": 3},
                                     {"llm_mode": "lora", "lr_llm": 1.234567e-05, "budget_tokens": 10_000}])
@pytest.mark.parametrize("preset", ["mini", "nano", "smol"])
def test_a_config_written_as_flags_parses_back_to_itself(preset, options):
    from salad_core.cli import build_parser
    from salad_core.cli_training import train_config

    config = TrainConfig.for_preset(preset, **options)
    argv = config.to_argv()
    recipe = TrainConfig.for_preset(preset).to_dict()
    changed = [k for k, v in options.items() if recipe[k] != v]
    assert argv[:2] == ["--preset", preset] and len(argv) == 2 + 2 * len(changed)  # only what differs is written
    assert train_config(build_parser().parse_args(["train", *argv])) == config


def test_unknown_choices_are_refused_on_the_command_line(capsys):
    from salad_core.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--align", "asr"])
    assert "invalid choice: 'asr' (choose from 'none', 'ctc', 'ctc-soft')" in capsys.readouterr().err


def test_a_recipe_cannot_hold_an_invalid_value():
    with pytest.raises(ValueError, match="align"):
        TrainConfig.for_preset("mini", align="asr")


def test_stage2_keeps_stage1s_model_options_and_replays_its_decay_schedule():
    from salad_core.schedule import lr_factor

    stage1 = TrainConfig.for_preset("mini", alpha=0.5)
    stage2 = TrainConfig.stage2(stage1, "train-a", "select-b", synthetic_prob=0.25, max_steps=160)
    assert (stage2.stage, stage2.from_run, stage2.round_id, stage2.synthetic_prob) == (2, "train-a", "select-b", 0.25)
    assert (stage2.alpha, stage2.align, stage2.llm_mode, stage2.lr_adapter) == (0.5, "ctc-soft", "full", stage1.lr_adapter)
    assert stage2.max_steps == 160 and stage2.llm_unfreeze_step == 0 and stage2.warmup_steps == 0
    # step s of Stage II has the learning rate of step 640 + s of Stage I
    for s in (1, 80, 160):
        assert lr_factor(s, 160, 0, 1.0) == pytest.approx(lr_factor(640 + s, 800, stage1.warmup_steps, 0.2))
    # without a recipe: exactly Stage I's decay, the selected speech drawn by its hours (None); nothing inherited
    assert TrainConfig.stage2(TrainConfig(preset="smol", synthetic_prob=0.9), "a", "b").synthetic_prob is None
    assert TrainConfig.stage2(TrainConfig(preset="nano", max_steps=40, decay_fraction=0.2), "a", "b").max_steps == 8
    # mini's recipe: half the speech documents from the selection, over three times Stage I's decay
    mini = TrainConfig.stage2(stage1, "a", "b")
    assert (mini.synthetic_prob, mini.max_steps, mini.decay_fraction) == (0.5, 3 * 160, 1.0)
    with pytest.raises(ValueError, match="stage 2 needs from_run and round_id"):
        TrainConfig(stage=2)


def test_a_selection_config_written_as_flags_parses_back_to_itself():
    from salad_core.cli import build_parser
    from salad_core.select.config import SelectConfig

    for config in (SelectConfig("train-a"), SelectConfig("train-b", gamma=0.0, budget="5%", seed=2, cer_max=0.35,
                                                          voice="espeak:en-us,flite:kal16", clusters=12)):
        parsed = build_parser().parse_args(["select", *config.to_argv()])
        given = {f: getattr(parsed, f) for f in SelectConfig.__dataclass_fields__ if getattr(parsed, f) is not None}
        assert SelectConfig(**given) == config


def test_an_evaluation_config_written_as_flags_parses_back_to_itself():
    from salad_core.cli import build_parser
    from salad_core.eval.config import EvalConfig

    for config in (EvalConfig(), EvalConfig(limit=15, probe_limit=5),
                   EvalConfig(preset="nano", model_path="data/runs/x/final", tasks=["nano-capitals", "nano-animals"],
                              voice="world", lanes=["base_text", "speech"], corpus=False, split="dev", k_shot=3),
                   EvalConfig(voices=["flite:slt", "espeak:en-us@1.2", "flite:slt+noise10"], scoring="acc"),
                   EvalConfig(speech_llm="Qwen/Qwen2-Audio-7B-Instruct", llm="Qwen/Qwen-7B-Chat", trust_remote_code=True,
                              dataset="hf:hlt-lab/voicebench:mmsu@law", answer_column="reference", scoring="generate",
                              max_new_tokens=8)):
        parsed = build_parser().parse_args(["eval", *config.to_argv()])
        given = {f: getattr(parsed, f) for f in EvalConfig.__dataclass_fields__ if getattr(parsed, f) is not None}
        assert EvalConfig(**given) == config
    assert EvalConfig(limit=15, probe_limit=5).to_argv() == ["--limit", "15", "--probe-limit", "5"]
    assert EvalConfig(trust_remote_code=True, corpus=False).to_argv() == ["--trust-remote-code", "--no-corpus"]


def test_the_ctc_warm_up_leaves_room_for_distillation():
    TrainConfig.for_preset("nano", ctc_warmup_steps=40)  # nano's align is none: no warm-up, whatever the count
    with pytest.raises(ValueError, match="ctc_warmup_steps"):
        TrainConfig.for_preset("nano", align="ctc", ctc_warmup_steps=40, max_steps=40)
    smol = TrainConfig.for_preset("smol")
    assert smol.align == "ctc-soft" and 0 < smol.ctc_warmup_steps < smol.max_steps and smol.llm_mode == "frozen"


def test_the_model_options_set_only_what_is_given_on_top_of_the_preset():
    from salad_core.presets import model_config

    given = TrainConfig.for_preset("nano", encoder="openai/whisper-small", adapter_width=96, adapter_hz=12.5)
    built = model_config("nano", **given.model_options())
    assert (built.encoder_name, built.adapter_width, built.adapter_stack) == ("openai/whisper-small", 96, 4)
    assert (built.llm_name, built.adapter_layers, built.adapter_heads) == ("world:nano", 1, 2)  # the preset's
    plain = model_config("nano", **TrainConfig.for_preset("nano").model_options())
    assert (plain.encoder_name, plain.adapter_width, plain.adapter_stack) == ("openai/whisper-tiny.en", 64, 4)


@pytest.mark.parametrize("options, says", [
    ({"adapter_hz": 15.0}, "adapter_hz 15.0 is not the encoder's 50 Hz divided by a whole number"),
    ({"adapter_hz": 100.0}, "adapter_hz 100.0"),
    ({"adapter_width": 50, "adapter_heads": 4}, "adapter_width 50 does not split into 4 heads"),
    ({"adapter_layers": 0}, "adapter_layers must be a positive count"),
])
def test_an_adapter_shape_that_cannot_be_built_is_refused_by_name(options, says):
    with pytest.raises(InputError, match=says):
        TrainConfig.for_preset("mini", **options)
