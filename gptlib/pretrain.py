"""Chapter 7: pretraining — the loop that turns a randomly initialised GPT into a language model.

One step of the loop (``train``)::

    for each of grad_accum micro-batches:   x, y = get_batch(train_data)    (B, T) each
        loss = model(x, y) / grad_accum;     loss.backward()                gradients add up
    clip the gradient's global norm to grad_clip                (Pascanu et al. 2013)
    lr = lr_at(step): linear warm-up, then cosine decay         (Loshchilov & Hutter 2017)
    AdamW update, weight decay only on matrices                 (Loshchilov & Hutter 2019)

Batches come from ``gptlib.data.get_batch`` with a ``torch.Generator`` seeded from
``TrainConfig.seed``: two runs with the same seed see the same batches, so two models can be
compared on identical data. Checkpoints (``gptlib.checkpoint``) hold the optimizer and RNG states,
so a resumed run continues exactly as if it had never stopped. What is trained on is a *task*
(``LanguageModelTask`` by default): fine-tuning (``gptlib.finetune``) runs this same loop with
classification batches. The command line
``python -m gptlib.pretrain --config configs/X.json`` and its config files live in
``gptlib.runconfig``.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time

import torch
from torch import nn
from torch.nn import functional as F

from gptlib import checkpoint as ckpt
from gptlib.data import get_batch
from gptlib.trainconfig import OPTIMIZERS, SCHEDULES, TrainConfig, TrainResult

__all__ = ["TrainConfig", "TrainResult", "SCHEDULES", "lr_at", "param_groups", "make_optimizer",
           "OPTIMIZERS", "MuonAdamW", "estimate_loss", "consecutive_windows", "dataset_loss",
           "LanguageModelTask", "train",
           "TrainingInterrupted"]

def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of optimizer step ``step`` (0-based, ``0 .. cfg.steps - 1``).

    Warm-up: ``lr * (step + 1) / warmup_steps`` for the first ``warmup_steps`` steps (linear, as
    in Goyal et al. 2017; warm-up itself is older: He et al. 2016, Vaswani et al. 2017), so the
    first update is already small but not zero. Then, with ``p`` going from 0 at
    the first step after warm-up to 1 at the last step: cosine ``min_lr + (lr - min_lr) *
    (1 + cos(pi p)) / 2`` (Loshchilov & Hutter 2017, SGDR, without restarts), linear
    ``lr - (lr - min_lr) p``, or constant ``lr``. Steps past the end keep the last value.
    """
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    decay_steps = cfg.steps - cfg.warmup_steps - 1
    p = 0.0 if decay_steps <= 0 else min(1.0, (step - cfg.warmup_steps) / decay_steps)
    if cfg.schedule == "linear":
        return cfg.lr - (cfg.lr - cfg.min_lr) * p
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's two parameter groups: matrices decay, vectors do not.

    Decayed: every parameter with 2 or more dimensions — the Linear weights and the embedding
    tables (the token embedding *is* the output layer's weight matrix through weight tying, so it
    is a matmul weight like the others; nanoGPT's rule, and GPT-1's "all non bias or gain
    weights"; GPT-2's paper gives no optimiser settings). Not decayed: biases and the
    gains/biases of LayerNorm/RMSNorm. Weight decay pulls weights towards 0, which limits the size
    of the products a matrix computes; for a norm's gain 0 is not "simple" but "switched off",
    and biases are too few to overfit with. ``named_parameters`` lists a tied matrix once.
    """
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


class MuonAdamW(torch.optim.Optimizer):
    """Muon (Jordan et al. 2024; ``torch.optim.Muon``) on the hidden weight matrices, AdamW on the
    rest (embeddings, the tied output layer, biases, norm gains), stepped together.

    Muon replaces each matrix's (Nesterov) momentum by an approximately orthogonal matrix: five
    Newton-Schulz iterations push its singular values towards 1 (to roughly 0.5-1.5, not exactly;
    torch runs them in bfloat16, on the CPU too), so no direction of the update dominates; with
    ``adjust_lr_fn="match_rms_adamw"`` (Liu et al. 2025, "Muon is Scalable for LLM Training") its
    update has AdamW's RMS, so both halves share one learning rate and weight decay.
    ``param_groups`` lists Muon's groups first, then AdamW's; the state dict is one ordinary
    optimizer state dict over that order, so checkpoints save and resume it like AdamW's.
    """

    def __init__(self, muon_params, adamw_groups, *, lr, weight_decay, betas, fused=None):
        self.muon = torch.optim.Muon(muon_params, lr=lr, weight_decay=weight_decay,
                                     adjust_lr_fn="match_rms_adamw")
        self.adamw = torch.optim.AdamW(adamw_groups, lr=lr, betas=betas, fused=fused)
        self._parts = (self.muon, self.adamw)
        self.defaults = {}
        self.state = {}                            # (the parts keep their own)

    @property
    def param_groups(self):
        return self.muon.param_groups + self.adamw.param_groups

    def step(self, closure=None):
        for part in self._parts:
            part.step()

    def zero_grad(self, set_to_none: bool = True):
        for part in self._parts:
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        out, offset = {"state": {}, "param_groups": []}, 0
        for part in self._parts:
            sd = part.state_dict()
            out["state"].update({k + offset: v for k, v in sd["state"].items()})
            out["param_groups"] += [dict(g, params=[i + offset for i in g["params"]])
                                    for g in sd["param_groups"]]
            offset += sum(len(g["params"]) for g in sd["param_groups"])
        return out

    def load_state_dict(self, state_dict):
        groups, offset = list(state_dict["param_groups"]), 0
        for part in self._parts:
            n_groups = len(part.param_groups)
            mine, groups = groups[:n_groups], groups[n_groups:]
            n = sum(len(g["params"]) for g in mine)
            part.load_state_dict({
                "state": {k - offset: v for k, v in state_dict["state"].items()
                          if offset <= k < offset + n},
                "param_groups": [dict(g, params=[i - offset for i in g["params"]]) for g in mine]})
            offset += n


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW (Loshchilov & Hutter 2019) over ``param_groups``; ``train`` sets its lr every step.

    A model on the fast path (``model.config.fast``) gets PyTorch's fused AdamW, one kernel for
    all parameters: the same update, measured 2.5x (width 128) to 8x (width 384) faster per step
    than the default on one CPU thread (``benchmarks/train.py``); the foreach variant was slower
    than the default there. Other models keep the default implementation, so their results do
    not change.

    With ``cfg.optimizer == "muon"``: a ``MuonAdamW`` — Muon for the 2-D weights of Linear
    layers other than the output layer, AdamW (groups as above) for everything else.
    """
    fast = bool(getattr(getattr(model, "config", None), "fast", False))
    if getattr(cfg, "optimizer", "adamw") == "muon":
        head = getattr(model, "lm_head", None)
        matrices = [m.weight for m in model.modules() if isinstance(m, nn.Linear)
                    and m is not head and m.weight.requires_grad]
        ids = {id(p) for p in matrices}
        rest = [g for g in param_groups(model, cfg.weight_decay)]
        for g in rest:
            g["params"] = [p for p in g["params"] if id(p) not in ids]
        return MuonAdamW(matrices, [g for g in rest if g["params"]], lr=lr_at(0, cfg),
                         weight_decay=cfg.weight_decay, betas=cfg.betas,
                         fused=True if fast else None)
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=lr_at(0, cfg),
                             betas=cfg.betas, fused=True if fast else None)


def _batch_shape(cfg) -> tuple[int, int]:
    if isinstance(cfg, TrainConfig):
        return cfg.batch_size, cfg.block_size
    if isinstance(cfg, (tuple, list)) and len(cfg) == 2:
        return int(cfg[0]), int(cfg[1])
    raise TypeError(f"expected a TrainConfig or (batch_size, block_size), got {cfg!r}")


@torch.no_grad()
def estimate_loss(model: nn.Module, data: torch.Tensor, cfg, n_batches: int = 20,
                  generator: torch.Generator | None = None) -> float:
    """Mean cross-entropy (nats per token) over ``n_batches`` random batches of ``data``.

    ``cfg``: a ``TrainConfig`` or a ``(batch_size, block_size)`` pair. The model runs in eval mode
    (no dropout) without gradients and is put back in the mode it was in. Pass a freshly seeded
    ``generator`` to score every checkpoint on the same batches.
    """
    batch_size, block_size = _batch_shape(cfg)
    if not isinstance(n_batches, int) or n_batches < 1:
        raise ValueError(f"n_batches must be a positive int, got {n_batches!r}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        losses = []
        for _ in range(n_batches):
            x, y = get_batch(data, batch_size, block_size, generator)
            losses.append(model(x.to(device), y.to(device))[1].item())
    finally:
        model.train(was_training)
    return sum(losses) / len(losses)


def consecutive_windows(data: torch.Tensor, block_size: int):
    """``data`` (N,) cut into ``n = (N - 1) // block_size`` consecutive windows: inputs ``x`` and
    targets ``y`` (the inputs shifted by one), (n, block_size) each. The few tokens left over
    at the end are not used. What ``dataset_loss`` (and ``gptlib.ladder``) score."""
    if len(data) <= block_size:
        raise ValueError(f"data has {len(data)} tokens, fewer than block_size + 1 = "
                         f"{block_size + 1}")
    n = (len(data) - 1) // block_size
    x = data[:n * block_size].view(n, block_size)
    y = data[1:n * block_size + 1].view(n, block_size)
    return x, y


@torch.no_grad()
def dataset_loss(model: nn.Module, data: torch.Tensor, block_size: int,
                 batch_size: int = 64, *, per_token: bool = False):
    """Mean cross-entropy over *all* of ``data``, cut into consecutive windows of ``block_size``.

    Unlike ``estimate_loss`` (random windows) this is a fixed number for a given model and text:
    targets are the windows shifted by one, so every token from ``data[1]`` to
    ``data[n * block_size]`` is scored exactly once (``n`` windows; the few tokens left over at
    the end are not). The context restarts at each window: its first target is predicted from one
    token, its last from ``block_size``. It is the number to report for a held-out split.
    ``per_token=True`` returns the loss of each scored token instead, ``(n * block_size,)``: the
    loss of ``data[1 + i]`` at index ``i`` (to average over a chosen part of the text).
    """
    device = next(model.parameters()).device
    x, y = consecutive_windows(data, block_size)
    n = len(x)
    was_training = model.training
    model.eval()
    try:
        total, per_token_losses = 0.0, []
        for i in range(0, n, batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            if per_token:
                logits = model(xb)[0]                                       # (b, T, V)
                per_token_losses.append(F.cross_entropy(logits.transpose(1, 2), yb,
                                                        reduction="none").flatten().cpu())
            else:
                total += model(xb, yb)[1].item() * len(xb)
    finally:
        model.train(was_training)
    return torch.cat(per_token_losses) if per_token else total / n


def _check_data(name: str, data, cfg: TrainConfig, model: nn.Module) -> None:
    if not isinstance(data, torch.Tensor) or data.ndim != 1 or data.dtype != torch.long:
        raise ValueError(f"{name} must be a 1-D int64 tensor of token ids "
                         f"(gptlib.data.encode_text), got "
                         f"{getattr(data, 'dtype', type(data).__name__)} "
                         f"{tuple(getattr(data, 'shape', ()))}")
    if len(data) <= cfg.block_size:
        raise ValueError(f"block_size {cfg.block_size} is larger than {name} allows: a window "
                         f"needs block_size + 1 = {cfg.block_size + 1} tokens (inputs plus one "
                         f"target) but {name} has {len(data)}; use a smaller block_size or more "
                         f"text")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and len(data) and int(data.max()) >= vocab:
        raise ValueError(f"{name} holds token id {int(data.max())} but the model's vocabulary has "
                         f"{vocab} entries; was it encoded with another tokenizer?")


def _check_model(model: nn.Module, cfg: TrainConfig) -> None:
    context = getattr(getattr(model, "pos", None), "max_positions", None)
    if context is not None and cfg.block_size > context:
        raise ValueError(f"TrainConfig.block_size={cfg.block_size} exceeds the model's context of "
                         f"{context}; lower block_size or build the model with a larger block_size")


class LanguageModelTask:
    """What ``train`` trains on by default: next-token prediction on a stream of token ids.

    ``train`` is one loop for every task; a task object tells it the four things that differ
    between pretraining and fine-tuning (``gptlib.finetune.ClassificationTask`` is the other):

    - ``check(model, cfg, train_data, val_data)``: raise a clear error for data the loop can't use;
    - ``batch(data, cfg, generator)``: one micro-batch drawn with ``generator`` — here
      ``get_batch``'s ``(x, y)``, ``cfg.batch_size`` random windows of ``cfg.block_size`` tokens;
    - ``loss(model, batch, device)``: ``(mean loss, counts)`` on the batch; ``counts`` is a dict of
      numbers that add up over the micro-batches (``tokens``, the tokens trained on);
    - ``evaluate(model, cfg, train_data, val_data)``: the metrics to log at evaluation steps —
      here ``eval_train_loss`` and ``val_loss`` (``estimate_loss`` on the same batches every time,
      drawn from a generator seeded with ``cfg.seed + 1``, so the two curves are comparable);

    and ``step_metrics(counts)``: extra per-step fields from the summed counts (none here).
    """

    def check(self, model: nn.Module, cfg: TrainConfig, train_data, val_data) -> None:
        _check_model(model, cfg)
        _check_data("train_data", train_data, cfg, model)
        if val_data is not None:
            _check_data("val_data", val_data, cfg, model)

    def batch(self, data: torch.Tensor, cfg: TrainConfig, generator: torch.Generator):
        return get_batch(data, cfg.batch_size, cfg.block_size, generator)   # (B, T) twice

    def loss(self, model: nn.Module, batch, device):
        x, y = (t.to(device) for t in batch)
        return model(x, y)[1], {"tokens": y.numel()}

    def evaluate(self, model: nn.Module, cfg: TrainConfig, train_data, val_data) -> dict:
        return {key: estimate_loss(model, data, cfg, cfg.eval_batches,
                                   torch.Generator().manual_seed(cfg.seed + 1))
                for key, data in (("eval_train_loss", train_data), ("val_loss", val_data))
                if data is not None}

    def step_metrics(self, counts: dict) -> dict:
        return {}


def _rows(batch, rows: slice):
    """Rows ``rows`` of every tensor in a batch (a tensor, or a tuple/list/dict of them)."""
    if isinstance(batch, torch.Tensor):
        return batch[rows]
    if isinstance(batch, dict):
        return {k: _rows(v, rows) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_rows(v, rows) for v in batch)
    return batch


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by ``train`` on Ctrl-C (SIGINT): ``step`` is the last completed step, ``checkpoint``
    the step directory where it was saved (None if nothing was saved), ``reason`` why not."""

    def __init__(self, step: int, checkpoint=None, reason: str = ""):
        super().__init__(f"interrupted after step {step}")
        self.step, self.checkpoint, self.reason = step, checkpoint, reason


class _InterruptGuard:
    """Holds Ctrl-C while an optimizer update and its history record are applied together, so an
    interrupt never leaves the weights a step ahead of the history: a Ctrl-C that arrives then is
    raised when the step is complete. A second Ctrl-C while one is held is raised at once (the
    half-applied step is then not saved). Installed only over Python's default SIGINT handler in
    the main thread; elsewhere an interrupt is raised where it lands."""

    def __init__(self):
        self.holding, self.pending, self.previous = False, False, None

    def install(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def uninstall(self):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def _handler(self, signum, frame):
        if self.holding and not self.pending:
            self.pending = True
            return
        raise KeyboardInterrupt

    def hold(self):
        self.holding = True

    def release(self):
        self.holding = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


def train(model: nn.Module, train_data, cfg: TrainConfig, val_data=None, *, task=None,
          progress: bool = False, callback=None, checkpoint_dir=None, resume_from=None,
          tokenizer=None, checkpoint_info: dict | None = None) -> TrainResult:
    """Train ``model`` in place on ``train_data``; return a ``TrainResult``.

    ``task`` says what the data are and how to score them (see ``LanguageModelTask``, the
    default: ``train_data``/``val_data`` are (N,) int64 token ids). ``history`` gets one dict per
    optimizer step: ``step`` (1-based count of updates done), ``lr`` (used in this update),
    ``train_loss`` (mean loss of this step's micro-batches, before the update), ``grad_norm``
    (global gradient norm before clipping), ``tokens`` (trained on so far), ``time_s`` (since the
    start of this call), the task's ``step_metrics``; at evaluation steps (every
    ``cfg.eval_every`` and the last) the task's ``evaluate`` metrics. ``callback(record)`` is
    called after every step; if it returns ``True`` training stops there (no extra
    evaluation). ``checkpoint_dir`` (language models only): save checkpoints
    (``gptlib.checkpoint``) there, with ``tokenizer`` if given; ``resume_from``: a checkpoint
    directory to continue from exactly; ``checkpoint_info``: facts to store with each checkpoint.
    Ctrl-C (SIGINT) saves the last completed step to ``checkpoint_dir`` (whatever
    ``cfg.checkpoint_every`` is) and raises ``TrainingInterrupted``.

    Under ``torchrun`` (``gptlib.distributed``; the caller joins the process group) every rank
    draws the same global batch of ``cfg.batch_size`` from the same seeded generator and trains
    on its own slice, through DDP or FSDP (``cfg.parallel``): N ranks compute what one process
    computes with the same global batch. Every rank evaluates the same batches (so histories and
    callbacks agree), the logged ``train_loss`` and ``tokens`` are totals over the ranks, only
    rank 0 writes checkpoints, and ``model`` ends up holding the trained weights on every rank.
    """
    from gptlib import distributed as gdist
    task = LanguageModelTask() if task is None else task
    if checkpoint_dir is not None or resume_from is not None:
        if not isinstance(task, LanguageModelTask):
            raise ValueError("checkpoint_dir and resume_from save and restore language models; "
                             f"this run's task is {type(task).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    task.check(model, cfg, train_data, val_data)
    device = next(model.parameters()).device
    world = gdist.world_size() if gdist.is_active() else 1
    rows = gdist.batch_slice(cfg.batch_size) if world > 1 else None   # this rank's slice
    if world > 1 and cfg.parallel == "fsdp" and (checkpoint_dir or resume_from):
        raise gdist.DistributedError("checkpoints are written for DDP runs only; train with "
                                     "parallel='ddp' to checkpoint, or without checkpoint_dir")
    net = gdist.wrap(model, cfg.parallel) if world > 1 else model    # what computes
    optimizer = make_optimizer(net, cfg)                      # the trainable parameters only
    gen = torch.Generator().manual_seed(cfg.seed)             # the training batches
    history, start = [], 0
    if resume_from is not None:
        state = ckpt.load_checkpoint(resume_from, model, optimizer, cfg)
        gen.set_state(state["rng"]["batches"])
        ckpt.set_global_rng_state(state["rng"])
        history, start = state["history"], state["step"]
        saved_world = history[-1].get("world_size", 1) if history else 1
        if saved_world != world:
            raise gdist.DistributedError(
                f"the checkpoint at {resume_from} was written by a run on {saved_world} "
                f"process(es) and this run has {world}; resume with the same number "
                f"(torchrun --nproc_per_node {saved_world}) so that it continues exactly")
    tokens = history[-1]["tokens"] if history else 0
    if checkpoint_dir is not None:
        ckpt.clean_temporary(checkpoint_dir)                  # what a crashed save left behind
    rng_done, saved = None, {"step": None, "path": None}      # at the end of the last full step

    def snapshot():
        return None if checkpoint_dir is None else {"batches": gen.get_state(),
                                                    **ckpt.global_rng_state()}

    def save(step):
        if checkpoint_dir is not None and gdist.is_main():     # one rank writes
            saved["path"] = ckpt.save_checkpoint(
                checkpoint_dir, model, optimizer, cfg, step=step, history=history, rng=rng_done,
                tokenizer=tokenizer, info=checkpoint_info)
            saved["step"] = step

    bar = None
    if progress and gdist.is_main():
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=start, desc="training", unit="step")
    t0, stopped, step, state_bytes = time.perf_counter(), False, start, None
    model.train()
    net.train()
    rng_done, guard = snapshot(), _InterruptGuard().install()
    try:
        for step in range(start + 1, cfg.steps + 1):
            lr = lr_at(step - 1, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum, counts = 0.0, {}
            for micro in range(cfg.grad_accum):
                batch = task.batch(train_data, cfg, gen)       # the global batch, every rank
                if rows is not None:
                    batch = _rows(batch, rows)                 # this rank's slice of it
                # DDP: all-reduce once per step, after the last micro-batch's backward
                defer = world > 1 and cfg.parallel == "ddp" and micro < cfg.grad_accum - 1
                with net.no_sync() if defer else contextlib.nullcontext(), \
                        torch.autocast(device.type, torch.bfloat16,
                                       enabled=cfg.precision == "bf16"):
                    loss, batch_counts = task.loss(net, batch, device)
                (loss / cfg.grad_accum).backward()             # gradients add up
                loss_sum += loss.item()
                for key, value in batch_counts.items():
                    counts[key] = counts.get(key, 0) + value
            if world > 1:                                      # the totals over all ranks
                loss_sum, counts = gdist.all_sum(loss_sum, counts)
                loss_sum /= world
            # the global norm of all gradients; clipping rescales them all by one factor
            norm = nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip or math.inf)
            norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm   # FSDP
            guard.hold()                            # the update and its record, as one
            optimizer.step()
            if step == cfg.steps:                              # what this rank stores
                state_bytes = gdist.state_bytes(net, optimizer)
            optimizer.zero_grad(set_to_none=True)
            tokens += counts.get("tokens", 0)
            record = {"step": step, "lr": lr, "train_loss": loss_sum / cfg.grad_accum,
                      "grad_norm": norm.item(), "tokens": tokens,
                      "time_s": time.perf_counter() - t0, **task.step_metrics(counts)}
            if world > 1:
                record["world_size"] = world
            if step == cfg.steps or (cfg.eval_every and step % cfg.eval_every == 0):
                record.update(task.evaluate(net, cfg, train_data, val_data))
            history.append(record)
            rng_done = snapshot()
            guard.release()                         # a Ctrl-C held during the update: now
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{record[k]:.4f}" for k in
                                 ("train_loss", "val_loss", "val_accuracy") if k in record})
            stopped = bool(callback is not None and callback(record)) and step < cfg.steps
            if step == cfg.steps or stopped or (cfg.checkpoint_every
                                                and step % cfg.checkpoint_every == 0):
                save(step)
            if stopped:
                break
    except KeyboardInterrupt:
        done = history[-1]["step"] if history else 0
        if guard.holding:                       # a second Ctrl-C, inside an update
            raise TrainingInterrupted(done, None, "interrupted again during the update of step "
                                      f"{done + 1}, which cannot be saved") from None
        if checkpoint_dir is None or not history or saved["step"] == done:
            raise TrainingInterrupted(done, saved["path"] if saved["step"] == done else None,
                                      "no checkpoint_dir" if checkpoint_dir is None else "")
        try:                                    # a Ctrl-C during this save stops it at once
            save(done)                          # the last completed step, not the one cut short
        except KeyboardInterrupt:
            raise TrainingInterrupted(done, None, "interrupted again while saving it; the "
                                      "previous checkpoint is intact") from None
        raise TrainingInterrupted(done, saved["path"]) from None
    finally:
        guard.uninstall()
        if bar is not None:
            bar.close()
        model.eval()
    if net is not model and cfg.parallel == "fsdp":            # the shards, whole again
        model.load_state_dict(gdist.full_state_dict(net))
    evaluated = [r for r in history if "eval_train_loss" in r]
    return TrainResult(history=history,
                       final_val_loss=next((r["val_loss"] for r in reversed(history)
                                            if "val_loss" in r), None),
                       final_train_loss=(evaluated[-1]["eval_train_loss"] if evaluated else
                                         history[-1]["train_loss"] if history else None),
                       steps=history[-1]["step"] if history else 0, tokens=tokens,
                       elapsed_s=time.perf_counter() - t0, stopped_early=stopped,
                       state_bytes=state_bytes)


if __name__ == "__main__":          # python -m gptlib.pretrain --config configs/X.json
    from gptlib.runconfig import main
    main()
