"""Bad inputs get a clear error naming the problem — never a raw torch traceback or a silent
wrong answer. One block per kind of input (gptlib.validate holds one helper per kind), each case
checking the message."""

import math

import pytest
import torch
from torch import nn

from gptlib import validate
from gptlib.attention import (KVCache, MultiHeadAttention, fused_attention, merge_heads,
                              scaled_dot_product_attention, split_heads)
from gptlib.finetune import GPTClassifier, evaluate_classifier, freeze
from gptlib.generate import generate, generate_text, sample_next, stream, top_k_filter, top_p_filter
from gptlib.genre_data import ClassificationData, pad_batch
from gptlib.lora import LoRALinear, apply_lora, merge_lora
from gptlib.masking import padding_mask
from gptlib.model import GPT, GPTConfig
from gptlib.positional import (RotaryEmbedding, alibi_bias, alibi_slopes, sinusoidal_shift_matrix,
                               sinusoidal_table)
from gptlib.tokenizer import CharTokenizer


def tiny(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


IDX = torch.zeros(1, 3, dtype=torch.long)
Q = torch.randn(1, 2, 3, 4)


# ---- the helpers themselves -------------------------------------------------------------------

def test_helpers():
    assert validate.check_bool("x", False) is False
    with pytest.raises(TypeError, match="x must be True or False, got 0"):
        validate.check_bool("x", 0)
    assert validate.check_int("n", 3, 1) == 3
    with pytest.raises(TypeError, match="n must be an int, got float 2.0"):
        validate.check_int("n", 2.0, 1)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        validate.check_int("n", 0, 1)
    assert validate.check_number("p", 0.5, low=0, low_open=True, high=1) == 0.5
    for bad, msg in ((float("nan"), "finite"), (0, "> 0"), (1.5, "<= 1"), ("1", "number")):
        with pytest.raises((TypeError, ValueError), match=f"p must be .*{msg}"):
            validate.check_number("p", bad, low=0, low_open=True, high=1)
    validate.check_finite("t", torch.tensor([0.0, -math.inf]), allow_neg_inf=True)
    with pytest.raises(ValueError, match=r"t contains 1 NaN \(shape \(2,\)\); why"):
        validate.check_finite("t", torch.tensor([0.0, math.nan]), "why")
    with pytest.raises(ValueError, match="t contains infinite values"):
        validate.check_finite("t", torch.tensor([math.inf, -math.inf]), allow_neg_inf=True)


# ---- empty inputs -----------------------------------------------------------------------------

def test_empty_batches():
    model, empty = tiny(), torch.zeros(0, 3, dtype=torch.long)
    msg = r"idx is an empty batch \(shape \(0, 3\)\); pass at least one sequence"
    with pytest.raises(ValueError, match=msg):
        model(empty)
    with pytest.raises(ValueError, match=msg):
        generate(model, empty, 2)
    clf = GPTClassifier(model, 2)
    with pytest.raises(ValueError, match=msg):
        clf(empty, lengths=torch.zeros(0, dtype=torch.long))
    data = ClassificationData(empty, empty.bool(), torch.zeros(0, dtype=torch.long), ("a", "b"), [], [])
    with pytest.raises(ValueError, match="evaluate_classifier needs a non-empty ClassificationData, "
                                         "got an empty one"):
        evaluate_classifier(clf, data)
    full = ClassificationData(IDX, IDX.bool() | True, torch.zeros(1, dtype=torch.long), ("a", "b"),
                              [], [])
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        evaluate_classifier(clf, full, batch_size=0)
    with pytest.raises(ValueError, match="pad_batch needs a non-empty list"):
        pad_batch([])


# ---- containers and types ---------------------------------------------------------------------

def test_kv_cache_must_hold_kvcaches():
    model = tiny()
    with pytest.raises(ValueError, match=r"kv_cache must be a list of 1 KVCache \(one per layer\), "
                                         r"got 1 items of type\(s\) \['int'\]"):
        model(IDX, kv_cache=[1])
    with pytest.raises(ValueError, match="got dict"):
        model(IDX, kv_cache={})


def test_head_splitting_checks_shapes():
    with pytest.raises(ValueError, match=r"split_heads takes \(B, T, C\) activations, got "
                                         r"\(1, 2, 3, 4\); this looks already split"):
        split_heads(Q, 2)
    with pytest.raises(ValueError, match="n_heads must be >= 1, got 0"):
        split_heads(torch.randn(1, 3, 4), 0)
    with pytest.raises(TypeError, match="n_heads must be an int, got str"):
        split_heads(torch.randn(1, 3, 4), "2")
    with pytest.raises(ValueError, match=r"merge_heads takes \(B, H, T, d\) heads, got \(1, 3, 4\)"):
        merge_heads(torch.randn(1, 3, 4))


@pytest.mark.parametrize("field", ["bias", "fused_attention", "causal"])
def test_config_bools_must_be_bools(field):
    with pytest.raises((TypeError, ValueError), match=f"GPTConfig.{field} must be True or False, "
                                                      f"got 'no'"):
        GPTConfig(**{field: "no"})


@pytest.mark.parametrize("eps", [math.inf, math.nan, 0.0, -1e-5])
def test_config_layer_norm_eps(eps):
    with pytest.raises(ValueError, match="GPTConfig.layer_norm_eps must be"):
        GPTConfig(layer_norm_eps=eps)


def test_attention_arguments():
    for fn in (scaled_dot_product_attention, fused_attention):
        with pytest.raises(ValueError, match="scale must be a finite number, got nan"):
            fn(Q, Q, Q, scale=math.nan)
        with pytest.raises(TypeError, match="scale must be a number, got str"):
            fn(Q, Q, Q, scale="a")
        with pytest.raises(TypeError, match="dropout_p must be a number"):
            fn(Q, Q, Q, dropout_p="a")
    with pytest.raises(ValueError, match="n_heads must be >= 1, got 0"):
        MultiHeadAttention(8, 0)
    with pytest.raises(TypeError, match="fused must be True or False, got 'no'"):
        MultiHeadAttention(8, 2, fused="no")
    with pytest.raises(ValueError, match="dropout must be a finite number, got nan"):
        MultiHeadAttention(8, 2, dropout=math.nan)
    with pytest.raises(TypeError, match=r"rope must be a callable rope\(q, k, offset\)"):
        MultiHeadAttention(8, 2)(torch.randn(1, 3, 8), rope=3)
    with pytest.raises(ValueError, match=r"k_new must be a 4-D \(B, H, T, d\) tensor"):
        KVCache().append(torch.randn(1, 2, 3), torch.randn(1, 2, 3))


def test_positional_arguments():
    with pytest.raises(ValueError, match="n_positions must be >= 0, got -1"):
        sinusoidal_table(-1, 4)
    with pytest.raises(ValueError, match="dim must be >= 1, got 0"):
        sinusoidal_table(4, 0)
    with pytest.raises(ValueError, match="base must be a finite number, got nan"):
        sinusoidal_table(4, 4, base=math.nan)
    with pytest.raises(TypeError, match="n_positions must be an int, got str"):
        sinusoidal_table("4", 4)
    with pytest.raises(ValueError, match="base must be > 0, got 0"):
        RotaryEmbedding(4, base=0)
    with pytest.raises(ValueError, match="head_dim must be >= 2, got 0"):
        RotaryEmbedding(0)
    with pytest.raises(TypeError, match="n_heads must be an int, got str"):
        alibi_slopes("4")
    with pytest.raises(ValueError, match="t_q must be >= 1, got -1"):
        alibi_bias(2, -1, 3)
    with pytest.raises(ValueError, match="k must be a finite number"):
        sinusoidal_shift_matrix(math.inf, 4)


# ---- sampling and non-finite values -----------------------------------------------------------

def test_non_finite_logits_are_refused_before_sampling():
    nan = torch.full((1, 5), math.nan)
    for temperature in (0, 1.0):        # greedy argmax would silently pick a NaN
        with pytest.raises(ValueError, match=r"logits contains 5 NaN \(shape \(1, 5\)\)"):
            sample_next(nan, temperature=temperature)
    with pytest.raises(ValueError, match="a row of logits is all -inf"):
        sample_next(torch.full((1, 3), -math.inf))
    with pytest.raises(ValueError, match="temperature=1e-10 is so small that logits / temperature "
                                         "overflows float32 to inf; use temperature=0"):
        sample_next(torch.tensor([[1e30, 0.0]]), temperature=1e-10)
    with pytest.raises(ValueError, match=r"logits must be a floating tensor \(..., V\)"):
        sample_next(torch.tensor([[1, 2]]))
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        sample_next(torch.zeros(1, 3), generator=1)
    # -inf logits (a filtered token) are fine, and never drawn
    draws = {int(sample_next(torch.tensor([[0.0, -math.inf, 0.0]]))) for _ in range(30)}
    assert draws <= {0, 2}


def test_filters_check_their_parameter():
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        top_k_filter(torch.randn(2, 5), 0)
    with pytest.raises(ValueError, match="p must be <= 1, got 2.0"):
        top_p_filter(torch.randn(2, 5), 2.0)
    with pytest.raises(ValueError, match="p must be a finite number, got nan"):
        top_p_filter(torch.randn(2, 5), math.nan)


def test_nan_weights_are_named_at_generation():
    model = tiny()
    with torch.no_grad():
        model.h[0].mlp.c_fc.weight[0, 0] = math.nan
    assert model.nonfinite_parameters() == ["h.0.mlp.c_fc.weight"]
    with pytest.raises(ValueError, match=r"logits at generation step 0 contain NaN/inf: the "
                                         r"parameters \['h.0.mlp.c_fc.weight'\] hold NaN/inf"):
        generate(model, IDX, 3)


def test_generate_argument_types():
    model = tiny()
    with pytest.raises(TypeError, match="use_cache must be True or False, got 'no'"):
        generate(model, IDX, 2, use_cache="no")
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        generate(model, IDX, 2, generator=1)
    with pytest.raises(TypeError, match="model must be a gptlib GPT, got str"):
        generate("m", IDX, 2)
    with pytest.raises(TypeError, match="model must be a gptlib GPT"):
        next(stream("m", IDX, 2))


def test_generate_text_names_a_tokenizer_mismatch():
    """Not 'position 0' of a decode deep inside: the tokenizer does not fit the model."""
    model = tiny()
    with pytest.raises(ValueError, match="the tokenizer has 3 tokens but the model's vocabulary "
                                         "has 20: ids 3..19"):
        generate_text(model, CharTokenizer("abc"), "ab", 3)
    big = CharTokenizer("".join(chr(ord("a") + i) for i in range(26)))
    small_model = tiny(vocab_size=26)
    assert isinstance(generate_text(small_model, big, "abz", 2, temperature=0), str)


# ---- inconsistent rules -----------------------------------------------------------------------

def test_one_rule_for_rows_without_real_tokens():
    """GPT and GPTClassifier refuse a padding-mask row with no real token with the same message."""
    model = tiny()
    idx = torch.zeros(2, 4, dtype=torch.long)
    mask = torch.tensor([[True] * 4, [False] * 4])
    msg = r"padding_mask rows \[1\] have no real token \(all False\)"
    with pytest.raises(ValueError, match=msg):
        model(idx, padding_mask=mask)
    with pytest.raises(ValueError, match=msg):
        GPTClassifier(model, 2)(idx, mask)
    with pytest.raises(ValueError, match=msg):
        generate(model, idx, 1, padding_mask=mask)


def test_lora_refuses_tied_lm_head():
    model = tiny()
    with pytest.raises(ValueError, match=r"LoRA target 'lm_head' shares its weight with \['wte'\] "
                                         r"\(tied weights"):
        apply_lora(model, targets="lm_head")
    assert not any(isinstance(m, LoRALinear) for m in model.modules())     # nothing half-done


def test_lora_arguments():
    model = tiny()
    with pytest.raises(ValueError, match=r"LoRA dropout must be < 1.0, got 2.0"):
        apply_lora(model, dropout=2.0)
    with pytest.raises(ValueError, match="LoRA alpha must be a number > 0, got inf"):
        apply_lora(model, alpha=math.inf)
    with pytest.raises(TypeError, match="targets must be a layer name or a list of them"):
        apply_lora(model, targets=3)
    with pytest.raises(ValueError, match="LoRA dropout must be a finite number, got nan"):
        LoRALinear(nn.Linear(3, 3), dropout=math.nan)
    with pytest.raises(TypeError, match="merge_lora merges an nn.Module, got str"):
        merge_lora("x")
    with pytest.raises(TypeError, match="apply_lora adapts an nn.Module"):
        apply_lora("x")
    layer = LoRALinear(nn.Linear(3, 3))
    with torch.no_grad():
        layer.lora_B.fill_(math.nan)
    with pytest.raises(ValueError, match=r"the LoRA update \(alpha / r\) B A contains 9 NaN.*"
                                         r"training diverged"):
        layer.merge()


def test_classifier_and_pad_batch_arguments():
    with pytest.raises(ValueError, match=r"dropout must be < 1.0, got 2.0"):
        GPTClassifier(tiny(), 2, dropout=2.0)
    with pytest.raises(ValueError, match="pad_batch takes integer token ids, got a sequence of "
                                         "torch.float32"):
        pad_batch([[1.5]])
    with pytest.raises(ValueError, match="pad_id must be a token id"):
        pad_batch([[1]], pad_id="x")
    with pytest.raises(ValueError, match=r"mode 'last_k' needs k in 0..1"):
        freeze(tiny(), "last_k", "1")


def test_mask_convention_is_documented_where_masks_are_passed():
    """Every public callable that takes a mask says True = may attend / real token, and that this
    is the opposite of torch.nn.MultiheadAttention's."""
    import gptlib.attention
    import gptlib.generate
    import gptlib.masking
    for obj in (scaled_dot_product_attention, MultiHeadAttention.forward, GPT.forward,
                generate, padding_mask, GPTClassifier, gptlib.masking, gptlib.generate):
        doc = obj.__doc__.replace("\n", " ")
        assert "MultiheadAttention" in doc, obj
        assert "True" in doc, obj
