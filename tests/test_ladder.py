"""Tests for gptlib.ladder (the rungs, the honest loss, the results helpers), the GPTConfig
options the ladder needs (``norm="none"``, ``residual``, ``tie_weights``) and its figure."""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from gptlib.ladder import (BUDGET, LR_VALUES, RUNGS, STACK, build_model, honest_loss,  # noqa: E402
                           ladder_summary, ladder_table, next_lr, read_ladder, rung, rung_gap,
                           rung_losses, train_config)
from gptlib.model import GPT, GPTConfig, count_gpt_parameters  # noqa: E402
from gptlib.pretrain import dataset_loss  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> GPTConfig:
    return GPTConfig(**{**dict(vocab_size=29, block_size=16, n_layer=1, n_head=2, n_embd=16),
                        **overrides})


# --- the GPTConfig options ---------------------------------------------------------------

def test_bare_attention_model_is_embeddings_attention_output_layer():
    """norm none, no residual, no MLP, no positions, untied: logits = lm_head(attn(wte(x)))."""
    torch.manual_seed(0)
    m = GPT(tiny(norm="none", residual=False, mlp=False, pos_encoding="none",
                 tie_weights=False)).eval()
    idx = torch.randint(0, 29, (3, 11))
    by_hand = m.lm_head(m.h[0].attn(m.wte(idx), causal=True))   # no norm, skip or MLP
    assert torch.allclose(m(idx)[0], by_hand, atol=1e-6)
    assert not any("ln" in n for n, _ in m.named_parameters())


def test_residual_false_drops_only_the_skip_connections():
    torch.manual_seed(0)
    with_skip = GPT(tiny(residual=True)).eval()
    without = GPT(tiny(residual=False)).eval()
    without.load_state_dict(with_skip.state_dict())
    idx = torch.randint(0, 29, (2, 9))
    b = with_skip.h[0]
    x = with_skip.pos.embed(with_skip.wte(idx))
    a = b.attn(b.ln_1(x), causal=True)
    h = b.mlp(b.ln_2(a))                                   # each sublayer replaces its input
    assert torch.allclose(without(idx)[0], with_skip.lm_head(with_skip.ln_f(h)), atol=1e-5)
    assert not torch.allclose(without(idx)[0], with_skip(idx)[0], atol=1e-3)


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("norm", ["layernorm", "none"])
def test_parameter_count_of_the_new_options(tie, norm):
    m = GPT(tiny(norm=norm, tie_weights=tie, n_layer=2))
    assert (m.lm_head.weight is m.wte.weight) == tie
    expected = count_gpt_parameters(29, 16, 2, 16, tied=tie, norm=norm)
    assert sum(p.numel() for p in m.parameters()) == expected
    if norm == "none":
        assert expected == count_gpt_parameters(29, 16, 2, 16, tied=tie) - (2 * 2 + 1) * 2 * 16


@pytest.mark.parametrize("field,value", [("residual", "yes"), ("tie_weights", 1)])
def test_new_options_must_be_booleans(field, value):
    with pytest.raises(TypeError, match=f"GPTConfig.{field} must be True or False"):
        tiny(**{field: value})


def test_unknown_norm_is_named():
    with pytest.raises(ValueError, match="norm='batchnorm' is unknown"):
        tiny(norm="batchnorm")


@pytest.mark.parametrize("change", [{"residual": False}, {"tie_weights": False},
                                    {"norm": "none"}])
def test_gpt2_export_refuses_what_gpt2_does_not_have(change):
    pytest.importorskip("transformers")
    from gptlib.gpt2 import hf_config_from
    with pytest.raises(ValueError, match=next(iter(change))):
        hf_config_from(tiny(**change))


# --- the rungs ------------------------------------------------------------------------------

# Each neural rung of chapters 2-6 and the rung it is measured against: exactly one setting of
# the model differs between them.
STEPS = [("attn-1head", "attn-4heads", {"n_head"}),
         ("attn-4heads", "attn-4heads-unmasked", {"causal"}),
         ("attn-4heads", "mlp", {"mlp"}),
         ("mlp", "residual", {"residual"}),
         ("residual", "layernorm", {"norm"}),
         ("layernorm", "3-blocks", {"n_layer"}),
         ("3-blocks", "pos-learned", {"pos_encoding"}),
         ("3-blocks", "pos-rope", {"pos_encoding"}),
         ("3-blocks", "pos-alibi", {"pos_encoding"}),
         ("3-blocks", "pos-sinusoidal", {"pos_encoding"}),
         ("pos-learned", "gpt", {"tie_weights"})]


@pytest.mark.parametrize("before,after,changed", STEPS)
def test_each_rung_changes_one_thing(before, after, changed):
    a, b = (build_model(n, 29).config.to_dict() for n in (before, after))
    assert {k for k in a if a[k] != b[k]} == changed


def test_every_trained_rung_is_named_and_in_chapter_order():
    chapters = [r.chapter for r in RUNGS]
    assert chapters == sorted(chapters) and set(chapters) == set(range(1, 8))
    trained = {r.name for r in RUNGS if r.kind in ("gpt", "table")}
    assert trained == {b for a, b, _ in STEPS} | {"attn-1head", "neural-bigram"}
    m = build_model("3-blocks", 29)
    assert (m.config.n_embd, m.config.n_head, m.config.n_layer) == (STACK["n_embd"], 4, 3)
    with pytest.raises(ValueError, match="unknown rung 'four-heads'"):
        rung("four-heads")
    with pytest.raises(ValueError, match="only 'table' and 'gpt' rungs train"):
        build_model("bigram", 29)


def test_train_config_is_the_budget():
    cfg = train_config(3e-3, seed=2)
    assert cfg.steps * cfg.batch_size * cfg.block_size == 3_072_000
    assert (cfg.block_size, cfg.seed) == (BUDGET["block_size"], 2)
    assert math.isclose(cfg.min_lr, 3e-4)
    short = train_config(3e-3, seed=0, steps=200)
    assert short.steps == 200 and short.warmup_steps == 20


def test_next_lr_widens_the_grid_only_at_an_edge():
    assert next_lr({1e-3: 3.0, 3e-3: 2.8, 1e-2: 2.5}) == 3e-2        # best at the top
    assert next_lr({1e-3: 2.0, 3e-3: 2.8, 1e-2: 2.9}) == 3e-4        # best at the bottom
    assert next_lr({1e-3: 3.0, 3e-3: 2.5, 1e-2: 2.9}) is None        # bracketed
    assert next_lr({LR_VALUES[-2]: 3.0, LR_VALUES[-1]: 2.0}) is None  # no larger value to try


# --- the honest loss --------------------------------------------------------------------------

def test_honest_loss_is_dataset_loss_for_a_causal_model():
    torch.manual_seed(0)
    m = GPT(tiny(n_layer=2))
    data = torch.randint(0, 29, (16 * 9 + 1,))
    assert math.isclose(honest_loss(m, data, 16, batch_size=4), dataset_loss(m, data, 16),
                        rel_tol=1e-5)


def test_honest_loss_of_an_unmasked_one_layer_model_is_its_causal_twin():
    """With one layer and no positions, the last position of a prefix 0..t attends to exactly
    the keys a causal model's position t attends to; so the unmasked model, scored honestly, is
    the same weights with the mask on, scored as usual. Its leaky loss is lower (it sees the
    targets)."""
    torch.manual_seed(0)
    unmasked = GPT(tiny(causal=False, pos_encoding="none", mlp=False))
    opt = torch.optim.Adam(unmasked.parameters(), lr=1e-2)
    data = torch.randint(0, 29, (16 * 9 + 1,))
    x, y = data[:-1].view(9, 16), data[1:].view(9, 16)
    for _ in range(60):                                   # learn to copy the visible next token
        opt.zero_grad()
        unmasked(x, y)[1].backward()
        opt.step()
    causal = GPT(tiny(causal=True, pos_encoding="none", mlp=False))
    causal.load_state_dict(unmasked.state_dict())
    honest = honest_loss(unmasked, data, 16, batch_size=4)
    assert math.isclose(honest, dataset_loss(causal, data, 16), rel_tol=1e-5)
    assert dataset_loss(unmasked, data, 16) < honest - 0.5


def test_honest_loss_rejects_short_data():
    with pytest.raises(ValueError, match="fewer than block_size"):
        honest_loss(GPT(tiny()), torch.zeros(10, dtype=torch.long), 16)


# --- the results helpers -------------------------------------------------------------------

def fake_results():
    runs = [{"rung": "bigram", "val_loss": 2.48, "seed": None, "parameters": 100},
            {"rung": "attn-1head", "val_loss": 2.60, "seed": 0, "lr": 1e-2, "final": True},
            {"rung": "attn-1head", "val_loss": 2.90, "seed": 0, "lr": 1e-3, "final": False},
            {"rung": "attn-1head", "val_loss": 2.62, "seed": 1, "lr": 1e-2, "final": True},
            {"rung": "attn-4heads", "val_loss": 2.50, "seed": 0, "lr": 1e-2, "final": True},
            {"rung": "attn-4heads", "val_loss": 2.55, "seed": 1, "lr": 1e-2, "final": True},
            {"rung": "mlp", "val_loss": 2.2, "seed": 0, "lr": 1e-2, "final": True}]
    return {"settings": {}, "runs": runs}


def test_summary_keeps_final_runs_and_stops_at_the_chapter():
    rows = ladder_summary(fake_results(), upto_chapter=2)
    assert [r["rung"] for r in rows] == ["bigram", "attn-1head", "attn-4heads"]
    assert rows[1]["losses"] == [2.60, 2.62] and math.isclose(rows[1]["spread"], 0.02)
    table = ladder_table(fake_results(), 2)
    assert "2.610 (2.600..2.620)" in table and "+ MLP" not in table


def test_rung_gap_is_the_worst_case_over_seeds():
    r = fake_results()
    assert math.isclose(rung_gap(r, "attn-4heads", "attn-1head"), 2.60 - 2.55)
    assert rung_gap(r, "attn-1head", "bigram") < 0                 # the bigram is better
    assert rung_losses(r, "attn-1head") == [2.60, 2.62]
    with pytest.raises(ValueError, match="no final run of rung 'layernorm'"):
        rung_losses(r, "layernorm")


def test_read_ladder_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="run scripts/experiments/ladder.py"):
        read_ladder(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_text('{"runs": []}')
    with pytest.raises(ValueError, match="holds no runs"):
        read_ladder(tmp_path / "empty.json")
    (tmp_path / "odd.json").write_text('{"runs": [{"rung": "lstm", "val_loss": 1.0}]}')
    with pytest.raises(ValueError, match="lstm"):
        read_ladder(tmp_path / "odd.json")


def test_staircase_figure_highlights_the_chapter():
    import matplotlib.pyplot as plt

    from gptlib.viz.ladder import plot_ladder
    ax = plot_ladder(fake_results(), chapter=2)
    labels = ax.get_yticklabels()
    assert [t.get_text().split()[0] for t in labels] == ["ch1", "ch2", "ch2"]
    assert [t.get_fontweight() for t in labels] == ["normal", "bold", "bold"]
    assert len(ax.lines) == 3                                      # one set of dots per rung
    plt.close(ax.figure)


def test_windowed_ngram_backs_off_at_each_window_start():
    """Scored on windows, a trigram's first target in each window has one token of context (a
    bigram), the rest two: the same as chapter 1's ngram_loss run window by window."""
    from gptlib.ladder import ngram_window_loss
    from gptlib.ngram import ngram_loss

    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 5, (400,), generator=g).tolist()
    ev = torch.randint(0, 5, (3 * 8 + 1,), generator=g).tolist()
    total = 0.0
    for w in range(3):
        x = ev[w * 8:w * 8 + 9]                        # a window's 8 inputs and 8 targets
        total += ngram_loss(train, x[:2], 2, 5, alpha=0.1).loss          # target 1: bigram
        total += 7 * ngram_loss(train, x, 3, 5, alpha=0.1).loss          # targets 2..8
    assert math.isclose(ngram_window_loss(train, ev, 3, 5, 0.1, 8), total / 24, rel_tol=1e-9)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        ngram_window_loss(train, ev, 3, 5, 0.0, 8)
