"""`DistillTrainer`: Stage I of SALAD on Hugging Face `accelerate` (CPU, one GPU, or many: the same code).

    trainer = DistillTrainer(config, store)   # setup(): world, model, plan, optimizer, schedule, accelerator, resume
    summary = trainer.train()                 # loop: loss step, clip, step; log; checkpoint; evaluate

Shape after torchtune's recipes: `setup` builds the parts in dependency order, `loss_step` returns one micro-batch's
summed losses, `train` loops. Micro-batch losses are summed over their text positions and divided once by the
step's total, so every text position weighs the same whatever the accumulation.

The run lives in the store through `Store.run` (a resumed one through `Store.running`): 'running', then 'done', or
'failed' with its error. A run killed at any moment resumes (`salad train --resume RUN`): a checkpoint step is saved
before that step's evaluation, which a resumed run runs again when the store lacks it, and a run killed before its
first checkpoint starts again from step 0 under its own id.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from dataclasses import dataclass

import torch

from salad_core.errors import InputError, TrainingError
from salad_core.eval.vocabulary import ALL_TASKS, DIVERGENCES
from salad_core.jobs import note_run
from salad_core.progress import Progress
from salad_core.provenance import new_run_id
from salad_core.runs import MODEL_RUN_FILE, Lineage, RunDir
from salad_core.schedule import lr_factor
from salad_core.store import Store
from salad_core.train import checkpoint as ckpt
from salad_core.train import trackers
from salad_core.train.config import TrainConfig
from salad_core.train.data import WorldBatches
from salad_core.train.machine import every_core_while_others_wait, machine, process_share
from salad_core.train.plan import TrainPlan
from salad_core.train.step import Batch, DistillationStep, ctc_targets, text_positions

log = logging.getLogger(__name__)
LOSS_PARTS = ("loss", "kl", "nll", "ctc")
LOG_EVERY = 10  # train_steps rows are written to the store in groups (each write opens the file)


@dataclass
class Counters:
    step: int = 0
    tokens: int = 0  # text positions trained on (the KL and NLL's): none in the CTC warm-up
    speech_s: float = 0.0
    ctc_targets: int = 0  # tokens of the speech spans the alignment aid's CTC was taken on (all of the warm-up's)

    @classmethod
    def of_checkpoint(cls, meta: dict, step: int) -> Counters:
        return cls(step, meta["tokens"], meta["speech_s"], meta.get("ctc_targets", 0))


class DistillTrainer:
    def __init__(self, config: TrainConfig, store: Store | None = None, resume: str | None = None):
        self.config, self.store, self.resume_id = config, store or Store(), resume
        self.counters = Counters()
        self.last_evaluation: dict[str, float] = {}  # pooled metrics of the latest periodic evaluation

    # -- setup -----------------------------------------------------------------------------------------------

    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        from salad_core.model.modeling import SaladModel
        from salad_core.presets import model_config
        from salad_core.world import preset_world

        torch.set_flush_denormal(True)
        cfg = self.config
        trackers.require(cfg.report_to)  # before anything is built
        torch.manual_seed(cfg.seed)
        # The world comes first: the model's LLM is the world's pretrained LM.
        self.world = preset_world(cfg.preset)
        self.run_id = self.resume_id or new_run_id("train")
        self.run = RunDir(self.run_id, "train")
        # The schedule counts optimizer steps. accelerate's default steps a prepared scheduler once per process at
        # every optimizer step (it assumes per-process batches), which ran two processes' schedule at twice the speed.
        self.accelerator = Accelerator(step_scheduler_with_optimizer=False,
                                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
                                       **trackers.accelerator_options(cfg, self.run.root))
        self.model = SaladModel.build(self.continued_model_config() or
                                      model_config(cfg.preset, **cfg.model_options()))
        self.data = self.training_data()
        self.local_batch = process_share(cfg.batch_size, self.accelerator.num_processes)
        self.plan = TrainPlan.of(cfg, self.data)
        step_module = DistillationStep(self.model, cfg.alpha, cfg.kl_direction, cfg.kl_temperature, cfg.kl_chunk,
                                       cfg.ctc_weight)
        self.optimizer = torch.optim.AdamW(self.param_groups(), weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_lambdas())
        self.step_module, self.optimizer, self.scheduler = self.accelerator.prepare(step_module, self.optimizer, self.scheduler)
        if self.resume_id:
            self.restore()
        elif cfg.stage == 2:
            self.start_from_stage1()

    def training_data(self):
        """The speech the run hears: its `--speech` sources, streamed, else the preset's world (and in Stage II the
        selected speech); replay text from the world, or from its `--text` sources."""
        from salad_core.train.stream_batches import replay_text, streamed

        cfg, rank, processes = self.config, self.accelerator.process_index, self.accelerator.num_processes
        replay = replay_text(cfg, self.world, rank, processes)
        if cfg.speech:
            return streamed(cfg, self.model.encoder, self.world, replay, rank, processes)
        return WorldBatches(self.world, cfg.seed, cfg.replay_prob, rank, processes, encoder=self.model.encoder,
                            synthetic=self.selected_speech(), synthetic_prob=cfg.synthetic_prob, replay=replay)

    def continued_model_config(self):
        """The model of the run this one continues (a resumed run, or Stage II's Stage I run), as its checkpoints
        saved it: a later salad may have changed the preset since (the adapter's size, the world's LM). None for a
        new Stage I run (or one resumed before its first checkpoint), which takes the preset's."""
        from salad_core.model.config import SaladConfig

        sources = [self.resume_id, self.config.from_run if self.config.stage == 2 else None]
        folders = [RunDir(s, "train").latest_checkpoint() for s in sources if s]
        folder = next((f for f in folders if f is not None), None)
        return SaladConfig.from_pretrained(folder) if folder else None

    def selected_speech(self):
        """Stage II: the synthetic speech of the run's round and of the rounds behind it; None in Stage I."""
        if self.config.stage != 2:
            return None
        from salad_core.select.round import SelectedSpeech

        return SelectedSpeech(Lineage.of(self.store).training_rounds(self.config.round_id))

    def param_groups(self) -> list[dict]:
        cfg = self.config
        adapter = list(self.model.adapter.parameters()) + (list(self.model.ctc.parameters()) if self.model.ctc else [])
        groups = [{"params": adapter, "lr": cfg.lr_adapter, "name": "adapter"}]
        llm = [p for p in self.model.llm.parameters() if p.requires_grad]
        if llm:
            groups.append({"params": llm, "lr": cfg.lr_llm, "name": "llm"})
        return groups

    def lr_lambdas(self) -> list:
        cfg, steps = self.config, self.plan.max_steps
        shape = lambda s: lr_factor(s + 1, steps, cfg.warmup_steps, cfg.decay_fraction)  # noqa: E731
        lambdas = [shape]
        if len(self.optimizer.param_groups) > 1:
            lambdas.append(lambda s: shape(s) if s + 1 >= cfg.llm_unfreeze_step else 0.0)
        return lambdas

    def start_from_stage1(self) -> None:
        """Stage II starts from the Stage I run's pre-decay checkpoint: weights, optimizer moments, counters, RNG and
        data position. With `synthetic_prob` 0 and as many steps as that decay (no preset Stage II recipe, or
        `--max-steps` set to it) it therefore replays Stage I's own decay phase step for step."""
        stage1 = RunDir(self.config.from_run, "train")
        folder = stage1.pre_decay_checkpoint()
        if folder is None:
            raise TrainingError(f"run {self.config.from_run} has no pre-decay checkpoint in {stage1.root}. Fix: "
                                "start Stage II from a Stage I run that reached its decay phase.")
        meta = ckpt.restore_training(folder, self.model, self.optimizer, self.data)
        for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
            group["lr"] = lr  # the loaded state holds Stage I's rates; this schedule starts its own
        self.counters = Counters.of_checkpoint(meta, 0)
        log.info("stage II starts from %s of %s", folder.name, self.config.from_run)

    def restore(self) -> None:
        """The resumed run's state at its latest checkpoint; a run killed before its first one starts again."""
        run = self.run
        if not run.config_file.is_file():
            raise InputError(f"run {run.run_id} has no folder at {run.root}. Fix: point SALAD_DATA at the data folder "
                             "it was trained in.")
        differences = self.config.differences(TrainConfig.from_dict(run.config()))
        if differences:
            names = ", ".join(f"{k}: now {a!r}, checkpoint {b!r}" for k, (a, b) in differences.items())
            raise TrainingError(f"run {run.run_id} was trained with other options ({names}). "
                                "Fix: resume with the run's own options (salad train --resume RUN_ID alone).")
        saved = json.loads(run.plan_file.read_text()) if run.plan_file.is_file() else self.plan.to_dict()
        if saved != self.plan.to_dict():
            raise TrainingError(f"run {run.run_id} planned {saved}, its config now gives {self.plan.to_dict()}: its "
                                "data changed since. Fix: resume it with the data it trained on, or start a new run.")
        folder = run.latest_checkpoint()
        if folder is None:  # the model, optimizer and data are as setup made them: a new run's
            log.info("run %s has no checkpoint yet: it starts again from step 0", run.run_id)
            if self.config.stage == 2:
                self.start_from_stage1()
            return
        meta = ckpt.restore_training(folder, self.model, self.optimizer, self.data, self.scheduler)
        self.counters = Counters.of_checkpoint(meta, meta["step"])
        log.info("resumed %s from %s (step %d)", run.run_id, folder.name, meta["step"])

    # -- one step --------------------------------------------------------------------------------------------

    def loss_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Summed losses of one micro-batch (KL, NLL, their alpha-mix) and its number of text positions."""
        return self.step_module(batch)

    def train_step(self) -> dict:
        cfg = self.config
        # A frozen (or not yet unfrozen) LLM reads text exactly as the teacher: replay would teach it nothing.
        llm_learns = self.config.llm_mode != "frozen" and self.counters.step + 1 >= cfg.llm_unfreeze_step
        # the CTC warm-up: the adapter alone, by the aid's loss (without the aid there is no warm-up)
        warmup = cfg.align != "none" and self.counters.step < cfg.ctc_warmup_steps
        micro = [self.data.next_batch(self.local_batch, allow_replay=llm_learns and not warmup, ctc_only=warmup)
                 for _ in range(cfg.grad_accum)]
        # Every text position of the global batch weighs the same: divide by the count over all processes, times
        # their number, because DDP averages the processes' gradients.
        device = self.accelerator.device  # collectives (NCCL on GPUs) need tensors on the process's device
        heard = ctc_targets(self.model.tokenizer, micro) if cfg.align != "none" else 0
        # speech in whole milliseconds: integers sum exactly, on every backend (MPS has no float64)
        local = torch.tensor([0 if warmup else text_positions(self.model.tokenizer, micro),
                              round(1000 * sum(b.speech_s for b in micro)), heard], device=device)
        positions, speech_ms, heard = self.accelerator.reduce(local, reduction="sum").tolist()
        # the loss's positions: text positions, or in the warm-up (no text is read) the CTC targets
        total, speech_s = max(1, heard if warmup else positions), speech_ms / 1000
        scale = self.accelerator.num_processes / total
        sums = torch.zeros(4, device=device)  # loss, kl, nll, ctc summed over this process's positions
        for i, batch in enumerate(micro):
            last = i == len(micro) - 1
            context = contextlib.nullcontext() if last else self.accelerator.no_sync(self.step_module)
            with context:
                out = self.loss_step(batch)
                loss = out["loss"] * scale
                if not torch.isfinite(loss):
                    raise TrainingError(f"loss is {loss.item()} at step {self.counters.step + 1}. Fix: lower the "
                                        "learning rates or check the data; the last checkpoint is intact.")
                self.accelerator.backward(loss)
            sums += torch.stack([out[k].detach().float().to(device) if k in out else sums.new_zeros(())
                                 for k in LOSS_PARTS])
        lrs = [group["lr"] for group in self.optimizer.param_groups]  # the rates this step uses
        # Clip over what this step changes: an LLM whose rate is still 0 would shrink the adapter's step by its norm.
        learning = [p for group, lr in zip(self.optimizer.param_groups, lrs) if lr > 0 for p in group["params"]]
        grad_norm = self.accelerator.clip_grad_norm_(learning, cfg.grad_clip) if learning else torch.zeros(())
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.counters.step += 1
        self.counters.tokens += int(positions)
        self.counters.speech_s += speech_s
        self.counters.ctc_targets += int(heard)
        # the loss and its KL and NLL per text position (the warm-up's loss per CTC target); the CTC per CTC target in
        # every phase, so its curve stays comparable when distillation starts (per text position it would jump there)
        per = torch.tensor([max(1, heard) if part == "ctc" else total for part in LOSS_PARTS], device=device)
        means = (self.accelerator.reduce(sums, reduction="sum") / per).tolist()  # over all processes
        return {"step": self.counters.step, "tokens": self.counters.tokens, "speech_s": self.counters.speech_s,
                "ctc_targets": self.counters.ctc_targets, **dict(zip(LOSS_PARTS, means)), "lr_adapter": lrs[0],
                "lr_llm": lrs[1] if len(lrs) > 1 else 0.0, "grad_norm": float(grad_norm),
                "n_text_positions": int(positions), "n_ctc_targets": int(heard), "replay": micro[0].replay}

    # -- the loop --------------------------------------------------------------------------------------------

    def train(self) -> dict:
        self.setup()
        start = time.perf_counter()
        with self.recorded(), trackers.tracked(self.accelerator, self.config, self.run_id, self.plan,
                                               self.counters.step):
            try:
                self.loop(start)
            except OSError as err:
                if err.errno == errno.ENOSPC:
                    raise TrainingError(f"the disk is full ({err}). Fix: free space under {self.run.root}; the last "
                                        "complete checkpoint is intact.") from err
                raise
        divergence = {k: self.last_evaluation.get(k) for k in DIVERGENCES}
        return {"run_id": self.run_id, "wall_s": time.perf_counter() - start, "steps": self.counters.step,
                "tokens": self.counters.tokens, "ctc_targets": self.counters.ctc_targets,
                "speech_hours": self.counters.speech_s / 3600, "run_dir": str(self.run.root), **divergence,
                **({"speech_read": self.data.record(self.store, self.run_id, self.accelerator.is_main_process)}
                   if self.config.speech else {})}

    def loop(self, start: float) -> None:
        """The steps up to the plan's end; the store holds every step up to a checkpoint, so a resumed run is
        complete. A step's checkpoint is saved before its evaluation: a run killed during it evaluates it again."""
        cfg, main, pending = self.config, self.accelerator.is_main_process, []
        try:
            with Progress(self.plan.max_steps, "training", file=None if main else "") as progress:
                progress.update(self.counters.step)
                step = self.counters.step
                if main and self.resume_id and self.evaluates(step) and not self.evaluated(step):
                    self.evaluate(step, progress)
                while self.counters.step < self.plan.max_steps and not self.budget_spent():
                    tick = time.perf_counter()
                    record = self.train_step()
                    record["tokens_per_s"] = record["n_text_positions"] / (time.perf_counter() - tick)
                    record["wall_s"] = time.perf_counter() - start
                    trackers.log_step(self.accelerator, record)
                    pending.append(record)
                    progress.update(1, message=f"loss {record['loss']:.3f}")
                    step = self.counters.step
                    checkpoint_now = step % cfg.ckpt_every == 0 or step == self.plan.decay_start - 1
                    if main and (len(pending) >= LOG_EVERY or self.evaluates(step) or checkpoint_now):
                        self.store.add_train_steps(self.run_id, pending)
                        pending = []
                    if checkpoint_now:
                        self.save(step)
                    if self.evaluates(step):
                        self.evaluate(step, progress)
            if main:
                self.save_final()
        finally:
            if main:  # what was computed is kept, whatever ended the run
                self.store.add_train_steps(self.run_id, pending)

    @contextlib.contextmanager
    def recorded(self):
        """The run in the store and its folder, on the main process: created (or resumed) 'running', then 'done', or
        'failed' with the error; the pid file tells the dashboard a live run from an interrupted one."""
        if not self.accelerator.is_main_process:
            yield
            return
        if self.resume_id:
            lifecycle = self.store.running(self.run_id)
        else:
            self.run.root.mkdir(parents=True, exist_ok=True)
            self.run.config_file.write_text(json.dumps(self.config.to_dict(), indent=1))
            self.run.plan_file.write_text(json.dumps(self.plan.to_dict(), indent=1))
            lifecycle = self.store.run("train", self.config.to_dict(), model=self.model_record(),
                                       seed=self.config.seed, run_id=self.run_id, plan=self.plan.to_dict(),
                                       parent_run=self.config.round_id if self.config.stage == 2 else None)
        with lifecycle:
            note_run(self.run_id)  # the dashboard's job that started this process knows its run
            with open(self.run.machines_file, "a") as f:
                f.write(json.dumps({**machine(self.accelerator), "from_step": self.counters.step}) + "\n")
            self.run.pid_file.write_text(str(os.getpid()))
            try:
                yield
            finally:
                self.run.pid_file.unlink(missing_ok=True)

    def model_record(self) -> dict:
        """The store's `models` row of this run's model."""
        cfg, run_id = self.model.config, self.run_id
        stage = f" stage II ({self.config.round_id})" if self.config.stage == 2 else ""
        return {"model_id": run_id, "name": f"{self.config.preset} α={self.config.alpha:g}{stage} ({run_id})",
                "llm": cfg.llm_name, "encoder": cfg.encoder_name, "path": str(self.run.final),
                "adapter": {k: getattr(cfg, k) for k in ("adapter_stack", "adapter_layers", "adapter_width", "llm_mode")},
                "params": self.model.parameter_table()}

    def budget_spent(self) -> bool:
        """A token budget (text tokens) ends the run when reached; an hours budget set the plan's steps."""
        cfg = self.config
        return bool(cfg.budget_tokens and self.counters.tokens >= cfg.budget_tokens)

    def evaluates(self, step: int) -> bool:
        """Whether `step` is evaluated: every `eval_every` steps, and always the last."""
        return step > 0 and (step % self.config.eval_every == 0 or step == self.plan.max_steps or self.budget_spent())

    def evaluated(self, step: int) -> bool:
        """Whether the store holds the evaluation of `step` (written in one transaction: all of it, or none)."""
        return bool((self.store.metrics(self.run_id)["step"] == step).any())

    # -- evaluation and checkpoints ----------------------------------------------------------------------------

    def evaluate(self, step: int, progress: Progress | None = None) -> None:
        """Dev-slice F, M, text and speech accuracy per task: the forgetting and misalignment curves."""
        if not self.accelerator.is_main_process:
            return
        from salad_core.train.evaluate import evaluate_world

        self.model.eval()

        def show(task: str) -> None:
            if progress is not None:
                progress.update(0, message=f"evaluating step {step}: {task}")

        rng = ckpt.rng_state()  # the evaluation leaves training's random state as it found it, run once or twice
        with every_core_while_others_wait():
            rows = evaluate_world(self.model, self.world, self.config.eval_items, seed=self.config.seed, on_task=show)
        ckpt.set_rng_state(rng)
        self.last_evaluation = {r["metric"]: r["value"] for r in rows if r["task"] == ALL_TASKS}
        trackers.log_evaluation(self.accelerator, self.last_evaluation, step)
        counters = [{"task": ALL_TASKS, "metric": "tokens", "value": self.counters.tokens},
                    {"task": ALL_TASKS, "metric": "speech_hours", "value": self.counters.speech_s / 3600}]
        self.store.add_metrics(self.run_id, [{**r, "step": step} for r in rows + counters])
        self.model.train()  # the encoder and the teacher copy stay in eval mode (SaladModel.train)

    def save(self, step: int) -> None:
        if not self.accelerator.is_main_process:
            return
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "rng": ckpt.rng_state(), "data": self.data.state_dict()}
        meta = {"tokens": self.counters.tokens, "speech_s": self.counters.speech_s,
                "ctc_targets": self.counters.ctc_targets, "pre_decay": step == self.plan.decay_start - 1,
                "config_digest": self.config.digest()}
        ckpt.save_checkpoint(self.run, step, self.model, state, meta, self.config.keep_checkpoints)

    def save_final(self) -> None:
        """The final model, naming its run (runs.model_run): an evaluation of it records the run as its parent."""
        self.model.save_pretrained(self.run.final)
        (self.run.final / MODEL_RUN_FILE).write_text(json.dumps({"run_id": self.run_id}))
