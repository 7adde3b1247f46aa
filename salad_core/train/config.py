"""`TrainConfig`: every knob of a training run, as flat data. One name everywhere: field, YAML key, CLI flag
(`--kl-temperature`), store column and chart label. Defaults follow the SALAD paper where it is known, and the
choices it leaves open (KL direction, temperature) are options recorded with every run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields

from salad_core.losses import KL_DIRECTIONS
from salad_core.model.config import LLM_MODES


# Per-preset recipes: the options in which a preset's tested set-up differs from the defaults below. A flag given on
# the command line (or a field passed to `for_preset`) always wins. The mini recipe is what reaches the spoken
# accuracy target on the CPU (README, "Stage I on the mini world"): the CTC alignment aid, and the LLM fine-tuned
# after the adapter has learned to emit word embeddings.
PRESET_RECIPES: dict[str, dict] = {
    "mini": {"align": "ctc", "llm_mode": "full", "llm_unfreeze_step": 200, "lr_adapter": 2e-3, "lr_llm": 3e-4,
             "warmup_steps": 30, "max_steps": 800, "eval_every": 200, "ckpt_every": 200},
    # the whole pipeline in about a minute, for tests and smoke checks
    "nano": {"max_steps": 40, "batch_size": 4, "warmup_steps": 4, "eval_every": 20, "ckpt_every": 20,
             "eval_items": 5},
}


@dataclass
class TrainConfig:
    preset: str = "mini"  # model + data preset (see salad_core.presets)
    # loss: alpha * KL(teacher(all text) || student(interleaved)) + (1 - alpha) * NLL, at next-is-text positions
    alpha: float = 1.0  # SALAD uses 1.0 (pure distillation); 0.0 is plain next-token training
    kl_direction: str = "forward"  # forward = KL(teacher || student) (assumed by the paper; unsure)
    kl_temperature: float = 1.0  # logits / tau; the KL is multiplied by tau^2 so gradients keep their scale
    kl_chunk: int = 512  # positions projected to the vocabulary at a time (memory bound)
    replay_prob: float = 1 / 3  # probability that a batch is text-only replay, trained toward the teacher too
    # what learns
    llm_mode: str = "frozen"  # frozen | lora | full
    llm_unfreeze_step: int = 0  # with lora/full: the LLM's group gets lr 0 before this step
    lr_adapter: float = 1e-3
    lr_llm: float = 5e-5
    weight_decay: float = 0.1
    warmup_steps: int = 50
    decay_fraction: float = 0.2  # linear decay over the last 20 % of the steps
    grad_clip: float = 1.0
    # how much
    batch_size: int = 16  # documents per micro-batch
    grad_accum: int = 1
    max_steps: int = 600
    budget_tokens: int | None = None  # stop after this many text tokens (whichever budget comes first)
    budget_hours: float | None = None  # the steps that see about this many hours of natural speech (sets max_steps)
    # alignment aid (documented, switchable; not in the paper): CTC on the adapter + compression, model/ctc.py
    align: str = "none"  # none | ctc
    ctc_weight: float = 1.0
    # bookkeeping
    eval_every: int = 100
    eval_items: int = 40  # dev items per task in periodic evaluations
    ckpt_every: int = 100
    keep_checkpoints: int = 2  # plus the pre-decay one, which is always kept
    seed: int = 0
    tag: str = ""  # free label, e.g. the sweep a run belongs to

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.kl_direction not in KL_DIRECTIONS:
            raise ValueError(f"kl_direction must be one of {KL_DIRECTIONS}, got {self.kl_direction!r}")
        if self.llm_mode not in LLM_MODES:
            raise ValueError(f"llm_mode must be one of {LLM_MODES}, got {self.llm_mode!r}")
        if self.align not in ("none", "ctc"):
            raise ValueError(f"align must be 'none' or 'ctc', got {self.align!r}")
        if self.kl_temperature <= 0 or self.batch_size < 1 or self.grad_accum < 1 or self.max_steps < 1:
            raise ValueError("kl_temperature, batch_size, grad_accum and max_steps must be positive")

    @classmethod
    def for_preset(cls, preset: str = "mini", **options) -> TrainConfig:
        """The preset's recipe (PRESET_RECIPES) with `options` on top; options that are None are left unset."""
        return cls(**{"preset": preset, **PRESET_RECIPES.get(preset, {}),
                      **{k: v for k, v in options.items() if v is not None}})

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    def differences(self, other: TrainConfig, ignore: tuple[str, ...] = ("max_steps",)) -> dict[str, tuple]:
        """Fields that differ (name -> (self, other)); resume uses it to refuse a mismatched checkpoint."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k] and k not in ignore}
