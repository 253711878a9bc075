"""The settings and the outcome of a training run: ``TrainConfig`` and ``TrainResult``.

They live apart from the loop (``gptlib.pretrain``) so that what only needs to *describe* a run
— ``gptlib.checkpoint`` stores a ``TrainConfig`` beside the weights — imports nothing of the
loop, and the imports flow one way: trainconfig <- checkpoint <- pretrain <- runconfig.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

__all__ = ["TrainConfig", "TrainResult", "SCHEDULES", "PRECISIONS", "OPTIMIZERS"]

SCHEDULES = ("cosine", "linear", "constant")
PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("adamw", "muon")


@dataclass
class TrainConfig:
    """The hyper-parameters of a training run (the model's live in ``GPTConfig``).

    steps optimizer updates, each on ``grad_accum`` micro-batches of ``batch_size`` windows of
    ``block_size`` tokens (so ``batch_size * grad_accum * block_size`` tokens per step). The
    learning rate warms up linearly from ``lr / warmup_steps`` to ``lr`` over ``warmup_steps``
    steps, then follows ``schedule`` down to ``min_lr`` at the last step. ``grad_clip=None``
    turns clipping off. Validation loss every ``eval_every`` steps (0: only at the end), each an
    average over ``eval_batches`` batches; a checkpoint every ``checkpoint_every`` steps (0: only
    at the end) when ``train`` is given a ``checkpoint_dir``.

    Under ``torchrun`` (chapter 9, ``gptlib.distributed``) ``batch_size`` is the *global* batch:
    each of the N ranks trains on its 1/N slice; ``parallel`` says how the ranks share the model
    ("ddp": each holds all of it; "fsdp": each holds a 1/N shard). ``precision="bf16"`` runs the
    forward pass under ``torch.autocast`` in bfloat16 (weights, gradients and AdamW stay fp32).
    at the end) when ``train`` is given a ``checkpoint_dir``. ``optimizer``: ``"adamw"``, or
    ``"muon"`` (Muon on the blocks' weight matrices, AdamW on the rest; see ``make_optimizer``).
    """

    steps: int
    batch_size: int
    block_size: int
    lr: float = 1e-3
    min_lr: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    eval_every: int = 0
    eval_batches: int = 20
    checkpoint_every: int = 0
    seed: int = 0
    parallel: str = "ddp"
    precision: str = "fp32"
    optimizer: str = "adamw"

    def __post_init__(self):
        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        for name in ("steps", "batch_size", "block_size", "grad_accum", "eval_batches"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, "
                                 f"got {getattr(self, name)!r}")
        for name in ("warmup_steps", "eval_every", "checkpoint_every", "seed"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be an int >= 0, "
                                 f"got {getattr(self, name)!r}")
        if self.warmup_steps > self.steps:
            raise ValueError(f"TrainConfig.warmup_steps={self.warmup_steps} is more than "
                             f"steps={self.steps}; the warm-up must fit in the run")
        if not is_num(self.lr) or self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be a number > 0, got {self.lr!r}")
        if not is_num(self.min_lr) or not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"TrainConfig.min_lr must be in [0, lr={self.lr}], "
                             f"got {self.min_lr!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule={self.schedule!r} is unknown; "
                             f"choose one of {SCHEDULES}")
        if not is_num(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be a number >= 0, "
                             f"got {self.weight_decay!r}")
        betas = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else None
        if betas is None or len(betas) != 2 or not all(is_num(b) and 0 <= b < 1 for b in betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1) (Adam's beta1, "
                             f"beta2), got {self.betas!r}")
        self.betas = betas                                    # JSON gives a list
        if self.grad_clip is not None and (not is_num(self.grad_clip) or self.grad_clip <= 0):
            raise ValueError(f"TrainConfig.grad_clip must be a number > 0 or None (no clipping), "
                             f"got {self.grad_clip!r}")
        if self.parallel not in ("ddp", "fsdp"):
            raise ValueError(f"TrainConfig.parallel={self.parallel!r} is unknown; choose 'ddp' "
                             f"(every rank holds the whole model) or 'fsdp' (sharded)")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision={self.precision!r} is unknown; choose one "
                             f"of {PRECISIONS}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer={self.optimizer!r} is unknown; "
                             f"choose one of {OPTIMIZERS}")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.grad_accum * self.block_size

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict (e.g. a config file's ``train`` section); unknown keys are an error."""
        if not isinstance(d, dict):
            raise TypeError(f"TrainConfig.from_dict needs a dict, got {type(d).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; valid keys are {known}")
        missing = [k for k in ("steps", "batch_size", "block_size") if k not in d]
        if missing:
            raise ValueError(f"TrainConfig needs {missing}")
        return cls(**d)


@dataclass
class TrainResult:
    """What ``train`` returns. ``history``: one dict per optimizer step (see ``train``)."""

    history: list[dict] = field(default_factory=list)
    final_val_loss: float | None = None
    final_train_loss: float | None = None
    steps: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    stopped_early: bool = False
    state_bytes: dict | None = None     # this rank's parameter/gradient/optimizer bytes (last step)
