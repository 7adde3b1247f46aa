"""`TrainPlan`: what a training run derives from its config and its data, kept apart from the config.

The config is recorded exactly as given (config.json, the store's `runs.config`, the checkpoints' digest), so that
`salad train --resume` compares like with like and `TrainConfig.to_argv()` rebuilds the command. What the trainer
works out from it sits beside it, in the run folder's `plan.json` and the store's `runs.plan`:

    max_steps       the optimizer steps: the config's, or those its `budget_hours` of natural speech buys
    decay_start     the first step of the learning-rate decay (Stage II continues from the checkpoint before it)
    synthetic_prob  Stage II: the share of speech documents drawn from the selected speech (None in Stage I)
    speech          `--speech` runs: each source as read (kind, location, weight, columns, digest or revision)
    text            `--text` runs: each replay text source as read (kind, files, column, weight, digest)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from salad_core.schedule import decay_start
from salad_core.train.config import TrainConfig


@dataclass(frozen=True)
class TrainPlan:
    max_steps: int
    decay_start: int
    synthetic_prob: float | None = None
    speech: list[dict] | None = None
    text: list[dict] | None = None

    @classmethod
    def of(cls, config: TrainConfig, data) -> TrainPlan:
        """The plan of `config` on its training data (`WorldBatches` or `StreamBatches`): a budget of hours buys
        steps by the seconds its documents last on average; Stage II keeps the synthetic share the data drew."""
        steps = budget_steps(config, data.mean_doc_s) if config.budget_hours else config.max_steps
        from salad_core.speech_data.texts import TextSource, describe_text

        text = [describe_text(TextSource.parse(t, config.text_column)) for t in config.text] if config.text else None
        return cls(steps, decay_start(steps, config.decay_fraction),
                   data.synthetic_prob if config.stage == 2 else None, data.described, text)

    def to_dict(self) -> dict:
        """The plan as plan.json keeps it; the sources only when the run has its own (so a plan written before they
        existed still equals its config's plan on resume)."""
        return {k: v for k, v in asdict(self).items() if v is not None or k not in ("speech", "text")}


def budget_steps(config: TrainConfig, mean_doc_s: float) -> int:
    """The steps that hear about `budget_hours` of natural speech, so the schedule decays at the budget's end.

    Expected speech per step: every document of a speech batch, and no replay batches while the LLM does not learn
    yet (before `llm_unfreeze_step`, or ever with a frozen LLM; see `DistillTrainer.train_step`)."""
    budget_s, full = config.budget_hours * 3600, config.batch_size * config.grad_accum * mean_doc_s
    early = max(0, config.llm_unfreeze_step - 1) if config.llm_mode != "frozen" else math.inf
    if budget_s <= early * full:
        return max(1, math.ceil(budget_s / full))
    return early + math.ceil((budget_s - early * full) / (full * (1 - config.replay_prob)))
