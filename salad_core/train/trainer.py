"""`DistillTrainer`: Stage I of SALAD on Hugging Face `accelerate` (CPU, one GPU, or many: the same code).

    trainer = DistillTrainer(config, store)   # setup(): world, model, optimizer, schedule, accelerator, resume
    summary = trainer.train()                 # loop: loss step, clip, step; log; evaluate; checkpoint

Shape after torchtune's recipes: `setup` builds the parts in dependency order, `loss_step` returns one micro-batch's
summed losses, `train` loops. Micro-batch losses are summed over their text positions and divided once by the
step's total, so every text position weighs the same whatever the accumulation.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import time
from dataclasses import dataclass

import torch

from salad_core.errors import TrainingError
from salad_core.jobs import note_run
from salad_core.model.processing import tokenize_segment
from salad_core.progress import Progress
from salad_core.provenance import new_run_id
from salad_core.runs import Lineage, RunDir
from salad_core.schedule import decay_start, lr_factor
from salad_core.store import Store
from salad_core.train import checkpoint as ckpt
from salad_core.train.config import ALIGN_MODEL, TrainConfig
from salad_core.train.data import WorldBatches
from salad_core.train.step import Batch, DistillationStep

log = logging.getLogger(__name__)
LOSS_PARTS = ("loss", "kl", "nll", "ctc")
LOG_EVERY = 10  # train_steps rows are written to the store in groups (each write opens the file)
DIVERGENCE_KEYS = ("F", "M", "item_F", "item_M")  # corpus and item-level, as `salad eval --json` carries them


@contextlib.contextmanager
def every_core_while_others_wait():
    """Evaluation runs on the main process alone while the others wait (or have finished). Under `accelerate launch`
    on the CPU each process was given one thread; for the evaluation the main one takes every core."""
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes == 1 or state.device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def machine(accelerator) -> dict:
    """What trains: the host's CPU and GPU, the processes and the device, with the time this session started."""
    import platform

    device = accelerator.device
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
            "platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cpu_cores": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
            "device": device.type, "gpu": gpu, "processes": accelerator.num_processes, "torch": torch.__version__}


@dataclass
class Counters:
    step: int = 0
    tokens: int = 0
    speech_s: float = 0.0


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
        torch.manual_seed(cfg.seed)
        # The world comes first: the model's LLM is the world's pretrained LM.
        self.world = preset_world(cfg.preset)
        # The schedule counts optimizer steps. accelerate's default steps a prepared scheduler once per process at
        # every optimizer step (it assumes per-process batches), which ran two processes' schedule at twice the speed.
        self.accelerator = Accelerator(step_scheduler_with_optimizer=False,
                                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.model = SaladModel(self.continued_model_config() or
                                model_config(cfg.preset, llm_name=cfg.llm, llm_mode=cfg.llm_mode,
                                             **ALIGN_MODEL[cfg.align]))
        self.data = WorldBatches(self.world, cfg.seed, cfg.replay_prob, self.accelerator.process_index,
                                 self.accelerator.num_processes, encoder=self.model.encoder,
                                 synthetic=self.selected_speech(), synthetic_prob=cfg.synthetic_prob)
        if cfg.stage == 2:
            cfg.synthetic_prob = self.data.synthetic_prob  # the share used, recorded with the run
        self.local_batch = self.process_share(cfg.batch_size, self.accelerator.num_processes)
        self.plan_steps()
        step_module = DistillationStep(self.model, cfg.alpha, cfg.kl_direction, cfg.kl_temperature, cfg.kl_chunk,
                                       cfg.ctc_weight)
        self.optimizer = torch.optim.AdamW(self.param_groups(), weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_lambdas())
        self.step_module, self.optimizer, self.scheduler = self.accelerator.prepare(step_module, self.optimizer, self.scheduler)
        self.run_id, self.run = self.open_run()
        if self.accelerator.is_main_process:
            with open(self.run.machines_file, "a") as f:
                f.write(json.dumps({**machine(self.accelerator), "from_step": self.counters.step}) + "\n")

    def continued_model_config(self):
        """The model of the run this one continues (a resumed run, or Stage II's Stage I run), as its checkpoints
        saved it: a later salad may have changed the preset since (the adapter's size, the world's LM). None for a
        new Stage I run, which takes the preset's."""
        from salad_core.model.config import SaladConfig

        source = self.resume_id or (self.config.from_run if self.config.stage == 2 else None)
        folder = RunDir(source).latest_checkpoint() if source else None
        return SaladConfig.from_pretrained(folder) if folder else None

    @staticmethod
    def process_share(batch_size: int, processes: int) -> int:
        """Documents per process in a micro-batch: `batch_size` is the global count, so the same command trains the
        same model (up to float summation order) on one process or several."""
        if batch_size % processes:
            raise TrainingError(f"batch size {batch_size} does not split over {processes} processes. Fix: pass a "
                                f"--batch-size that is a multiple of {processes}.")
        return batch_size // processes

    def selected_speech(self):
        """Stage II: the synthetic speech of the run's round and of the rounds behind it; None in Stage I."""
        if self.config.stage != 2:
            return None
        from salad_core.select.round import SelectedSpeech

        return SelectedSpeech(Lineage.of(self.store).training_rounds(self.config.round_id))

    def plan_steps(self) -> None:
        """A budget in hours of speech fixes the step count, so the schedule decays at the budget's end.

        Expected speech per step: every document of a speech batch, and no replay batches while the LLM does not
        learn yet (before `llm_unfreeze_step`, or ever with a frozen LLM; see `train_step`).
        """
        cfg = self.config
        docs_per_step = cfg.batch_size * cfg.grad_accum
        if cfg.budget_hours:
            mean_s = sum(d.seconds for d in self.data.speech_docs) / len(self.data.speech_docs)
            budget_s, full = cfg.budget_hours * 3600, docs_per_step * mean_s
            early = max(0, cfg.llm_unfreeze_step - 1) if cfg.llm_mode != "frozen" else math.inf
            if budget_s <= early * full:
                cfg.max_steps = max(1, math.ceil(budget_s / full))
            else:
                cfg.max_steps = early + math.ceil((budget_s - early * full) / (full * (1 - cfg.replay_prob)))
        self.decay_at = decay_start(cfg.max_steps, cfg.decay_fraction)

    def param_groups(self) -> list[dict]:
        cfg = self.config
        adapter = list(self.model.adapter.parameters()) + (list(self.model.ctc.parameters()) if self.model.ctc else [])
        groups = [{"params": adapter, "lr": cfg.lr_adapter, "name": "adapter"}]
        llm = [p for p in self.model.llm.parameters() if p.requires_grad]
        if llm:
            groups.append({"params": llm, "lr": cfg.lr_llm, "name": "llm"})
        return groups

    def lr_lambdas(self) -> list:
        cfg = self.config
        shape = lambda s: lr_factor(s + 1, cfg.max_steps, cfg.warmup_steps, cfg.decay_fraction)  # noqa: E731
        lambdas = [shape]
        if len(self.optimizer.param_groups) > 1:
            lambdas.append(lambda s: shape(s) if s + 1 >= cfg.llm_unfreeze_step else 0.0)
        return lambdas

    def open_run(self) -> tuple[str, RunDir]:
        """A new run in the store, or the run being resumed (its latest checkpoint loaded)."""
        if self.resume_id:
            run = RunDir(self.resume_id)
            self.restore(run)
            if self.accelerator.is_main_process:
                self.store.finish_run(self.resume_id, "running")
            return self.resume_id, run
        run_id = new_run_id("train")
        run = RunDir(run_id)
        if self.config.stage == 2:
            self.start_from_stage1()
        if self.accelerator.is_main_process:
            run.root.mkdir(parents=True, exist_ok=True)
            run.config_file.write_text(json.dumps(self.config.to_dict(), indent=1))
            cfg = self.model.config
            stage = f" stage II ({self.config.round_id})" if self.config.stage == 2 else ""
            model = {"model_id": run_id, "name": f"{self.config.preset} α={self.config.alpha:g}{stage} ({run_id})",
                     "llm": cfg.llm_name, "encoder": cfg.encoder_name, "path": str(run.final),
                     "adapter": {k: getattr(cfg, k) for k in ("adapter_stack", "adapter_layers", "adapter_width", "llm_mode")},
                     "params": self.model.parameter_table()}
            self.store.create_run("train", self.config.to_dict(), model=model, seed=self.config.seed, run_id=run_id,
                                  parent_run=self.config.round_id if self.config.stage == 2 else None)
            note_run(run_id)  # the dashboard's job that started this process knows its run
        return run_id, run

    def start_from_stage1(self) -> None:
        """Stage II starts from the Stage I run's pre-decay checkpoint: weights, optimizer moments, counters, RNG and
        data position. With `synthetic_prob` 0 and as many steps as that decay (no preset Stage II recipe, or
        `--max-steps` set to it) it therefore replays Stage I's own decay phase step for step."""
        stage1 = RunDir(self.config.from_run)
        folder = stage1.pre_decay_checkpoint()
        if folder is None:
            raise TrainingError(f"run {self.config.from_run} has no pre-decay checkpoint in {stage1.root}. Fix: "
                                "start Stage II from a Stage I run that reached its decay phase.")
        state, meta = ckpt.load_checkpoint(folder, self.model)
        self.optimizer.load_state_dict(state["optimizer"])
        for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
            group["lr"] = lr  # the loaded state holds Stage I's rates; this schedule starts its own
        ckpt.set_rng_state(state["rng"])
        self.data.load_state_dict(state["data"])
        self.counters = Counters(0, meta["tokens"], meta["speech_s"])
        log.info("stage II starts from %s of %s", folder.name, self.config.from_run)

    def restore(self, run: RunDir) -> None:
        saved = TrainConfig.from_dict(run.config())
        differences = self.config.differences(saved)
        if differences:
            names = ", ".join(f"{k}: now {a!r}, checkpoint {b!r}" for k, (a, b) in differences.items())
            raise TrainingError(f"run {run.run_id} was trained with other options ({names}). "
                                "Fix: resume with the run's own options (salad train --resume RUN_ID alone).")
        folder = run.latest_checkpoint()
        if folder is None:
            raise TrainingError(f"run {run.run_id} has no checkpoint to resume from. Fix: start a new run.")
        state, meta = ckpt.load_checkpoint(folder, self.model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        self.data.load_state_dict(state["data"])
        self.counters = Counters(meta["step"], meta["tokens"], meta["speech_s"])
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
        heard = self.count_heard_tokens(micro)  # the CTC targets: in the warm-up, the loss's positions too
        # speech in whole milliseconds: integers sum exactly, on every backend (MPS has no float64)
        local = torch.tensor([heard if warmup else self.count_positions(micro),
                              round(1000 * sum(b.speech_s for b in micro)), heard], device=device)
        positions, speech_ms, heard = self.accelerator.reduce(local, reduction="sum").tolist()
        total, speech_s = max(1, positions), speech_ms / 1000
        scale = self.accelerator.num_processes / total
        sums = torch.zeros(4, device=device)  # loss, kl, nll, ctc summed over this process's text positions
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
        self.counters.tokens += total
        self.counters.speech_s += speech_s
        # the loss and its KL and NLL per text position; the CTC per token of the speech spans, in every phase, so its
        # curve stays comparable when distillation starts (per text position it would jump about threefold there)
        per = torch.tensor([max(1, heard) if part == "ctc" else total for part in LOSS_PARTS], device=device)
        means = (self.accelerator.reduce(sums, reduction="sum") / per).tolist()  # over all processes
        return {"step": self.counters.step, "tokens": self.counters.tokens, "speech_s": self.counters.speech_s,
                **dict(zip(LOSS_PARTS, means)), "lr_adapter": lrs[0], "lr_llm": lrs[1] if len(lrs) > 1 else 0.0,
                "grad_norm": float(grad_norm), "n_text_positions": int(total), "replay": micro[0].replay}

    def count_positions(self, micro: list[Batch]) -> int:
        """Text positions (next token is text) in this process's micro-batches."""
        return sum(self.positions(segments) for batch in micro for segments in batch.docs)

    def count_heard_tokens(self, micro: list[Batch]) -> int:
        """Tokens of the speech spans in this process's micro-batches (0 without the alignment aid)."""
        if self.config.align == "none":
            return 0
        return sum(self.heard_tokens(segments) for batch in micro for segments in batch.docs)

    def heard_tokens(self, segments) -> int:
        """Tokens of a document's speech spans: the CTC targets."""
        return sum(len(tokenize_segment(self.model.tokenizer, s.text)) for s in segments if s.is_speech)

    def positions(self, segments) -> int:
        """Text tokens of a document, less its first token when the document opens with text (nothing predicts it)."""
        tok = self.model.tokenizer
        n = sum(len(tok(s.text, add_special_tokens=False).input_ids) for s in segments if not s.is_speech)
        return n - (0 if segments[0].is_speech else 1)

    # -- the loop --------------------------------------------------------------------------------------------

    def train(self) -> dict:
        self.setup()
        cfg, main = self.config, self.accelerator.is_main_process
        start, pending = time.perf_counter(), []
        pid_file = self.run.pid_file
        if main:  # lets the dashboard tell a live run started from the command line from an interrupted one
            pid_file.write_text(str(os.getpid()))
        try:
            with Progress(cfg.max_steps, "training", file=None if main else "") as progress:
                progress.update(self.counters.step)
                while self.counters.step < cfg.max_steps and not self.budget_spent():
                    tick = time.perf_counter()
                    record = self.train_step()
                    record["tokens_per_s"] = record["n_text_positions"] / (time.perf_counter() - tick)
                    record["wall_s"] = time.perf_counter() - start
                    pending.append(record)
                    progress.update(1, message=f"loss {record['loss']:.3f}")
                    step = self.counters.step
                    checkpoint_now = step % cfg.ckpt_every == 0 or step == self.decay_at - 1
                    if main and (len(pending) >= LOG_EVERY or step % cfg.eval_every == 0 or checkpoint_now):
                        self.store.add_train_steps(self.run_id, pending)
                        pending = []
                    if step % cfg.eval_every == 0 or step == cfg.max_steps or self.budget_spent():
                        self.evaluate(step, progress)  # the last step is always evaluated
                    if checkpoint_now:  # the store holds every step up to a checkpoint: a resumed run is complete
                        self.save(step)
            if main:
                self.store.add_train_steps(self.run_id, pending)
                self.save_final()
        except BaseException as err:
            if main:
                self.store.add_train_steps(self.run_id, pending)
                self.store.finish_run(self.run_id, "failed", f"{type(err).__name__}: {err}")
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                raise TrainingError(f"the disk is full ({err}). Fix: free space under {self.run.root}; "
                                    "the last complete checkpoint is intact.") from err
            raise
        finally:
            pid_file.unlink(missing_ok=True)
        if main:
            self.store.finish_run(self.run_id, "done")
        divergence = {k: self.last_evaluation.get(k) for k in DIVERGENCE_KEYS}
        return {"run_id": self.run_id, "wall_s": time.perf_counter() - start, "steps": self.counters.step,
                "tokens": self.counters.tokens, "speech_hours": self.counters.speech_s / 3600,
                "run_dir": str(self.run.root), **divergence}

    def budget_spent(self) -> bool:
        """A token budget ends the run when reached; an hours budget was turned into steps by `plan_steps`."""
        cfg = self.config
        return bool(cfg.budget_tokens and self.counters.tokens >= cfg.budget_tokens)

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

        with every_core_while_others_wait():
            rows = evaluate_world(self.model, self.world, self.config.eval_items, seed=self.config.seed, on_task=show)
        self.last_evaluation = {r["metric"]: r["value"] for r in rows if r["task"] == "__all__"}
        counters = [{"task": "__all__", "metric": "tokens", "value": self.counters.tokens},
                    {"task": "__all__", "metric": "speech_hours", "value": self.counters.speech_s / 3600}]
        self.store.add_metrics(self.run_id, [{**r, "step": step} for r in rows + counters])
        self.model.train()  # the encoder and the teacher copy stay in eval mode (SaladModel.train)

    def save(self, step: int) -> None:
        if not self.accelerator.is_main_process:
            return
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "rng": ckpt.rng_state(), "data": self.data.state_dict()}
        meta = {"tokens": self.counters.tokens, "speech_s": self.counters.speech_s, "pre_decay": step == self.decay_at - 1,
                "config_digest": self.config.digest()}
        ckpt.save_checkpoint(self.run, step, self.model, state, meta, self.config.keep_checkpoints)

    def save_final(self) -> None:
        self.model.save_pretrained(self.run.final)
