"""TrainConfig: per-preset recipes under explicit options, and the CLI's mapping of flags onto them."""

import pytest

from salad_core.train.config import PRESET_RECIPES, TrainConfig


def test_preset_recipe_fills_what_is_not_given_and_flags_win():
    config = TrainConfig.for_preset("mini", alpha=0.0, lr_llm=1e-4, max_steps=None)
    assert config.align == "ctc" and config.llm_mode == "full"  # from the recipe
    assert config.alpha == 0.0 and config.lr_llm == 1e-4  # given
    assert config.max_steps == PRESET_RECIPES["mini"]["max_steps"]  # None means "not given"
    assert TrainConfig.for_preset("smol").to_dict() == TrainConfig(preset="smol").to_dict()  # no recipe: defaults


def test_cli_flags_map_onto_the_recipe():
    from salad_core.cli import build_parser, train_config

    config = train_config(build_parser().parse_args(["train", "--preset", "mini", "--align", "none", "--alpha", "0.5"]))
    assert (config.preset, config.align, config.alpha, config.llm_mode) == ("mini", "none", 0.5, "full")
    assert train_config(build_parser().parse_args(["train", "--preset", "nano"])).align == "none"


def test_a_recipe_cannot_hold_an_invalid_value():
    with pytest.raises(ValueError, match="align"):
        TrainConfig.for_preset("mini", align="asr")
