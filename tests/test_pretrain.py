"""Tests for gptlib.pretrain: the schedule, the optimizer groups, the loop, checkpoints, the CLI."""

import math

import pytest
import torch

from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import TrainConfig, estimate_loss, lr_at, make_optimizer, train

PERIODIC = torch.arange(600) % 7                       # a sequence a tiny model can learn


def tiny_model(seed=0, **overrides) -> GPT:
    cfg = dict(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=16)
    cfg.update(overrides)
    torch.manual_seed(seed)
    return GPT(GPTConfig(**cfg))


def test_train_lowers_the_loss_of_a_learnable_sequence():
    model = tiny_model()
    cfg = TrainConfig(steps=40, batch_size=8, block_size=16, lr=1e-2, warmup_steps=4)
    before = estimate_loss(model, PERIODIC, cfg, 4, torch.Generator().manual_seed(0))
    result = train(model, PERIODIC, cfg, val_data=PERIODIC)
    assert before > 2.0                                # ~ ln 11 = 2.40 at init
    assert result.final_val_loss < 0.5 * before
    assert [r["step"] for r in result.history] == list(range(1, 41))
    assert result.history[-1]["tokens"] == 40 * 8 * 16
    assert "val_loss" in result.history[-1] and "val_loss" not in result.history[0]
