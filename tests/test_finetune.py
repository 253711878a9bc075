"""Tests for gptlib.finetune, gptlib.lora and gptlib.genre_data (chapter 8).

Every model here is tiny and random (no download); the fine-tuning runs are one or a few steps.
"""

import copy
import functools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gptlib.finetune import (THREE_CLASSES, ClassificationData, ClassificationTask, GPTClassifier,
                             count_trainable, evaluate_classifier, finetune, freeze, genre_dataset, load_backbone,
                             pad_batch)
from gptlib.lora import LoRALinear, apply_lora, lora_parameters, merge_lora
from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import TrainConfig, train

V, C, L, K = 23, 16, 2, 3                      # vocabulary, width, blocks, classes
ALL_LINEARS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def tiny_gpt(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**{"vocab_size": V, "block_size": 16, "n_layer": L, "n_head": 2,
                             "n_embd": C, **kw}))
    with torch.no_grad():                       # non-trivial norms and biases, as after training
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def ids(shape, seed=1, high=V):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def toy_data(n=64, t=8, seed=0) -> ClassificationData:
    """Random sequences of varying length; the class is the last real token's id mod K."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, t + 1, (n,), generator=gen).tolist()
    seqs = [torch.randint(0, V, (m,), generator=gen) for m in lengths]
    idx, mask = pad_batch(seqs)
    labels = torch.tensor([int(s[-1]) % K for s in seqs])
    return ClassificationData(idx, mask, labels, tuple(f"c{i}" for i in range(K)),
                              [""] * n, ["toy"] * n)


def cfg(**kw) -> TrainConfig:
    # a constant rate: these runs test the mechanics of a step, not the schedule
    return TrainConfig(**{"steps": 1, "batch_size": 8, "block_size": 8, "lr": 1e-2,
                          "weight_decay": 0.1, "schedule": "constant", **kw})


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# ---- LoRA ---------------------------------------------------------------------------------------

def test_lora_with_zero_initialised_B_leaves_outputs_unchanged():
    model, x = tiny_gpt(), ids((2, 12))
    before = model(x)[0]
    apply_lora(model, ALL_LINEARS, r=4, alpha=8, generator=torch.Generator().manual_seed(0))
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    assert len(layers) == 4 * L
    assert all(torch.all(m.lora_B == 0) and torch.any(m.lora_A != 0) for m in layers)
    assert torch.equal(model(x)[0], before)       # B = 0: the update B A x is exactly zero
    # the factors: r * (in + out) numbers per layer, e.g. c_attn 4 * (16 + 48)
    assert sum(p.numel() for p in lora_parameters(model)) == L * 4 * ((C + 3 * C) + (C + C)
                                                                      + (C + 4 * C) + (4 * C + C))
    assert all(not m.base.weight.requires_grad and not m.base.bias.requires_grad for m in layers)


def test_lora_layer_computes_base_plus_scaled_low_rank_update():
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    lora = LoRALinear(base, r=2, alpha=3.0)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(4, 6)
    expected = base(x) + 1.5 * x @ (lora.lora_B @ lora.lora_A).t()
    torch.testing.assert_close(lora(x), expected)
    torch.testing.assert_close(lora.merge()(x), expected)


def test_merged_and_unmerged_lora_agree_after_a_training_step():
    clf = GPTClassifier(tiny_gpt(), K)
    apply_lora(clf, ALL_LINEARS, r=4, alpha=8, generator=torch.Generator().manual_seed(0))
    freeze(clf, "lora")
    finetune(clf, toy_data(), cfg(steps=2))
    assert all(torch.any(m.lora_B != 0) for m in clf.modules() if isinstance(m, LoRALinear))
    merged = merge_lora(clf)
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert any(isinstance(m, LoRALinear) for m in clf.modules())         # a copy by default
    assert merged.backbone.lm_head.weight is merged.backbone.wte.weight  # tying survives
    data = toy_data(seed=1)
    with torch.no_grad():
        lora_logits = clf(data.idx, data.padding_mask)[0]
        merged_logits = merged(data.idx, data.padding_mask)[0]
        untouched = GPTClassifier(tiny_gpt(), K, head=clf.head)(data.idx, data.padding_mask)[0]
    torch.testing.assert_close(merged_logits, lora_logits, rtol=0, atol=1e-5)
    assert (lora_logits - untouched).abs().max() > 1e-3                 # the adapters did change it


def test_pretrain_train_fine_tunes_a_language_model_with_lora():
    """Generative fine-tuning reuses gptlib.pretrain.train as it is; only the adapters move."""
    model = apply_lora(tiny_gpt(), ("attn.c_attn", "mlp.c_fc"), r=2, alpha=4,
                       generator=torch.Generator().manual_seed(0))
    freeze(model, "lora")
    before = snapshot(model)
    train(model, ids((200,), seed=3), cfg(steps=2, eval_batches=1))
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) != ("lora_" in name), name


# ---- freezing -----------------------------------------------------------------------------------

def block_params(model):
    return sum(p.numel() for p in model.backbone.h[-1].parameters())


@pytest.mark.parametrize("mode, k, expected", [
    ("head", None, lambda m: C * K + K),
    ("last_k", 1, lambda m: C * K + K + 2 * C + block_params(m)),
    ("all", None, lambda m: sum(p.numel() for p in m.parameters())),
])
def test_frozen_parameters_do_not_change_and_trainable_ones_do(mode, k, expected):
    clf = freeze(GPTClassifier(tiny_gpt(), K), mode, k)
    assert count_trainable(clf) == expected(clf)
    before = snapshot(clf)
    finetune(clf, toy_data(), cfg())
    changed = {n for n, p in clf.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in clf.named_parameters() if p.requires_grad}
    assert changed == trainable
    if mode == "last_k":
        assert {n.split(".")[2] for n in changed if n.startswith("backbone.h.")} == {str(L - 1)}


def test_freeze_lora_mode_trains_only_adapters_and_head():
    clf = apply_lora(GPTClassifier(tiny_gpt(), K), ("attn.c_attn",), r=2)
    freeze(clf, "all")
    freeze(clf, "lora")
    names = {n for n, p in clf.named_parameters() if p.requires_grad}
    assert names == {f"backbone.h.{i}.attn.c_attn.lora_{ab}" for i in range(L) for ab in "AB"} \
        | {"head.weight", "head.bias"}
    assert count_trainable(clf) == L * 2 * (C + 3 * C) + C * K + K


# ---- the classifier -----------------------------------------------------------------------------

@pytest.mark.parametrize("pos_encoding, fused", [("learned", False), ("learned", True),
                                                 ("rope", False), ("alibi", False)])
def test_classifier_reads_the_last_real_token_under_left_and_right_padding(pos_encoding, fused):
    clf = GPTClassifier(tiny_gpt(pos_encoding=pos_encoding, fused_attention=fused), K).eval()
    seqs = [ids((n,), seed=n) for n in (3, 7, 12)]
    with torch.no_grad():
        alone = torch.cat([clf(s[None])[0] for s in seqs])
        for side in ("right", "left"):
            idx, mask = pad_batch(seqs, side=side)
            idx = torch.where(mask, idx, ids(idx.shape, seed=99))      # padding holds junk ids
            torch.testing.assert_close(clf(idx, mask)[0], alone, rtol=0, atol=1e-5)
        idx, mask = pad_batch(seqs)
        lengths = torch.tensor([3, 7, 12])
        torch.testing.assert_close(clf(idx, lengths=lengths)[0], alone, rtol=0, atol=1e-5)
        # what the test guards against: reading the last *position* of a padded row
        states = clf.backbone.hidden_states(idx, padding_mask=mask)[-1]          # (B, T, C)
        last_position = clf.head(clf.backbone.ln_f(states[:, -1]))
    assert (last_position[0] - alone[0]).abs().max() > 1e-3


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=10, max_size=10).filter(any), min_size=1,
                max_size=4), st.integers(0, 2**16))
def test_classifier_logits_depend_only_on_the_real_tokens(rows, seed):
    """Any mask — left, right, or holes — gives each row the logits of its real tokens alone."""
    clf = shared_classifier()
    mask = torch.tensor(rows)
    idx = ids(mask.shape, seed=seed)
    with torch.no_grad():
        alone = torch.cat([clf(idx[b][mask[b]][None])[0] for b in range(len(rows))])
        torch.testing.assert_close(clf(idx, mask)[0], alone, rtol=0, atol=1e-5)


@functools.cache
def shared_classifier():                       # built once: hypothesis calls the test many times
    return GPTClassifier(tiny_gpt(), K).eval()


def test_mean_pooling_averages_the_real_tokens_only():
    clf = GPTClassifier(tiny_gpt(), K, pooling="mean").eval()
    seqs = [ids((n,), seed=n) for n in (4, 9)]
    with torch.no_grad():
        alone = torch.stack([clf.backbone.ln_f(clf.backbone.hidden_states(s[None])[-1][0]).mean(0)
                             for s in seqs])
        for side in ("right", "left"):
            idx, mask = pad_batch(seqs, side=side)
            torch.testing.assert_close(clf.features(idx, mask), alone, rtol=0, atol=1e-5)
        assert (clf.features(idx) - alone).abs().max() > 1e-3       # padding would count
    with pytest.raises(ValueError, match="pooling must be 'last' or 'mean'"):
        GPTClassifier(tiny_gpt(), K, pooling="max")


def test_classifier_loss_is_cross_entropy_of_its_logits():
    clf = GPTClassifier(tiny_gpt(), K)
    data = toy_data(n=6)
    logits, loss = clf(data.idx, data.padding_mask, data.labels)
    assert logits.shape == (6, K)
    expected = -torch.log_softmax(logits, -1)[torch.arange(6), data.labels].mean()
    torch.testing.assert_close(loss, expected)
    assert clf(data.idx, data.padding_mask)[1] is None


def test_evaluate_classifier_counts_a_confusion_matrix():
    clf = GPTClassifier(tiny_gpt(), K)
    data = toy_data(n=30)
    scores = evaluate_classifier(clf, data, batch_size=7)
    with torch.no_grad():
        logits, loss = clf.eval()(data.idx, data.padding_mask, data.labels)
    pred = logits.argmax(-1)
    assert scores["confusion"].sum() == 30
    assert scores["confusion"][1].sum() == (data.labels == 1).sum()
    assert scores["confusion"][data.labels[0], pred[0]] >= 1
    assert scores["accuracy"] == pytest.approx((pred == data.labels).float().mean().item())
    assert scores["loss"] == pytest.approx(loss.item(), abs=1e-5)
    assert torch.equal(scores["predictions"], pred)


# ---- the loop -----------------------------------------------------------------------------------

def test_finetune_learns_a_toy_task():
    torch.manual_seed(0)
    clf = GPTClassifier(tiny_gpt(), K)
    train_data, val_data = toy_data(n=128), toy_data(n=60, seed=1)
    assert evaluate_classifier(clf, val_data)["accuracy"] < 0.6
    result = finetune(clf, train_data, cfg(steps=60, batch_size=16, lr=1e-2, warmup_steps=5,
                                           schedule="cosine", eval_every=30), val_data)
    assert [r["step"] for r in result.history if "val_accuracy" in r] == [30, 60]
    assert result.history[-1]["val_accuracy"] >= 0.9
    assert result.final_val_loss < 0.5 * math.log(K)


@pytest.mark.parametrize("grad_accum", [1, 3])
def test_tokens_count_the_real_tokens_trained_on_not_the_padding(grad_accum):
    """Every example has exactly 3 real tokens padded to 8: each step trains on
    batch_size * grad_accum examples, so it must add 3 * that many tokens (8 * that many would
    count the padding, 1 * that many only one micro-batch)."""
    n, t, real, bs, steps = 20, 8, 3, 4, 5
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(1, V, (n, t), generator=gen)
    mask = torch.arange(t).expand(n, t) < real
    idx[~mask] = 0
    data = ClassificationData(idx, mask, torch.randint(K, (n,), generator=gen), ("a", "b", "c"),
                              [""] * n, [""] * n)
    result = finetune(GPTClassifier(tiny_gpt(), K), data,
                      cfg(steps=steps, batch_size=bs, grad_accum=grad_accum))
    per_step = real * bs * grad_accum
    assert [r["tokens"] for r in result.history] == [per_step * (i + 1) for i in range(steps)]
    assert result.tokens == per_step * steps


def test_gradient_accumulation_equals_one_big_batch():
    """Two micro-batches of 4, each loss divided by 2, give the gradient of one batch of 8."""
    data = toy_data()
    one = GPTClassifier(tiny_gpt(), K)
    two = copy.deepcopy(one)
    a = finetune(one, data, cfg(batch_size=8, grad_accum=1)).history[0]
    b = finetune(two, data, cfg(batch_size=4, grad_accum=2)).history[0]   # the same 8 examples
    assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-6)
    assert b["train_accuracy"] == a["train_accuracy"] and b["tokens"] == a["tokens"]
    assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-5)   # the whole gradient's norm
    head = one.head.weight - two.head.weight          # Adam's first step: lr * sign(gradient)
    assert head.abs().max() < 1e-4


def test_finetune_is_the_pretraining_loop_with_a_classification_task():
    """One loop: finetune(...) is pretrain.train(..., task=ClassificationTask()), step for step."""
    data = toy_data()
    one = GPTClassifier(tiny_gpt(), K, pooling="mean")
    two = copy.deepcopy(one)
    a = finetune(one, data, cfg(steps=4, eval_every=2), data).history
    b = train(two, data, cfg(steps=4, eval_every=2), data, task=ClassificationTask()).history
    drop = lambda h: [{k: v for k, v in r.items() if k != "time_s"} for r in h]  # noqa: E731
    assert drop(a) == drop(b) and "val_accuracy" in a[1] and "val_accuracy" not in a[0]
    assert all(torch.equal(p, q) for p, q in zip(one.parameters(), two.parameters()))


def test_finetune_callback_stops_early():
    result = finetune(GPTClassifier(tiny_gpt(), K), toy_data(), cfg(steps=5),
                      callback=lambda r: r["step"] == 2)
    assert result.steps == 2 and result.stopped_early


# ---- loading pretrained models ------------------------------------------------------------------

def test_load_backbone_copies_a_model():
    source = tiny_gpt()
    model, tokenizer = load_backbone(source)
    assert tokenizer is None and model is not source
    with torch.no_grad():
        model.wte.weight.add_(1.0)
    assert not torch.equal(model.wte.weight, source.wte.weight)
    assert model.lm_head.weight is model.wte.weight


def test_hf_checkpoint_directory_loads_and_fine_tunes(tmp_path):
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        torch.manual_seed(0)
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=2, n_head=2, n_embd=C, vocab_size=V, n_positions=16,
            bos_token_id=V - 1, eos_token_id=V - 1)).eval()
        hf.save_pretrained(tmp_path)
    finally:
        transformers.utils.logging.enable_progress_bar()
    model, tokenizer = load_backbone(tmp_path)
    assert tokenizer is None and model.config.n_embd == C
    x = ids((2, 10))
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], hf(x).logits, rtol=0, atol=1e-5)
    clf = GPTClassifier(model, K)
    before = snapshot(clf)
    result = finetune(clf, toy_data(), cfg())
    assert math.isfinite(result.final_train_loss)
    assert all(not torch.equal(p, before[n]) for n, p in clf.named_parameters())


def test_book_exported_model_and_checkpoint_load(tmp_path):
    checkpoint = pytest.importorskip("gptlib.checkpoint")
    from gptlib.tokenizer import CharTokenizer
    tok = CharTokenizer.train("abcdefghijklmnopqrstuvw")
    source = tiny_gpt()
    checkpoint.save_pretrained(tmp_path / "export", source, tok)
    model, tokenizer = load_backbone(tmp_path / "export")
    assert tokenizer.encode("cab") == tok.encode("cab")
    x = ids((2, 10))
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], source(x)[0], rtol=0, atol=0)
    train(source, ids((200,), seed=3), cfg(eval_batches=1), checkpoint_dir=tmp_path / "ckpt",
          tokenizer=tok)
    model, tokenizer = load_backbone(tmp_path / "ckpt")
    assert tokenizer.vocab_size == V
    for (name, p), q in zip(model.named_parameters(), source.parameters()):
        assert torch.equal(p, q), name


# ---- the genre dataset --------------------------------------------------------------------------

class CharIds:
    """A stand-in tokenizer: one id per character (ord mod V)."""
    @staticmethod
    def encode(text):
        return [ord(ch) % V for ch in text]


def test_genre_dataset_is_balanced_deterministic_and_labelled_by_genre():
    from gptlib.data import load_plays
    genre = {p.slug: p.genre for p in load_plays()}
    data = genre_dataset("val", CharIds, THREE_CLASSES, n_per_class=10, passage_chars=100, seed=0)
    assert data.classes == ("comedy", "history", "tragedy")
    assert data.labels.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    assert data.idx.shape == (30, 100) and bool(data.padding_mask.all())
    assert all(len(t) == 100 for t in data.texts)
    assert data.idx[5].tolist() == CharIds.encode(data.texts[5])
    for label, slug in zip(data.labels.tolist(), data.sources):
        assert genre[slug] in THREE_CLASSES[data.classes[label]]
    assert len(set(data.sources[:10])) == 3                  # comedy: spread over its three plays
    again = genre_dataset("val", CharIds, THREE_CLASSES, n_per_class=10, passage_chars=100, seed=0)
    other = genre_dataset("val", CharIds, THREE_CLASSES, n_per_class=10, passage_chars=100, seed=1)
    assert again.texts == data.texts and other.texts != data.texts
    train_plays = set(genre_dataset("train", CharIds, n_per_class=12, passage_chars=50).sources)
    assert not train_plays & set(data.sources)                   # held-out plays stay held out



def test_genre_dataset_over_several_splits_with_n_per_play():
    from collections import Counter

    from gptlib.data import load_plays
    data = genre_dataset(("val", "test"), CharIds, THREE_CLASSES, passage_chars=60, seed=0,
                         n_per_play=4)
    held_out = {p.slug for s in ("val", "test") for p in load_plays(s)}
    counts = Counter(data.sources)
    assert set(counts) == held_out and set(counts.values()) == {4}     # every play, 4 each
    assert torch.bincount(data.labels).tolist() == [24, 8, 16]   # 6 comedies, 2 histories, 4 trag.
    single = genre_dataset("val", CharIds, THREE_CLASSES, passage_chars=60, seed=0, n_per_play=4)
    assert set(single.sources) == {p.slug for p in load_plays("val")}
    with pytest.raises(ValueError, match="n_per_play"):
        genre_dataset("val", CharIds, THREE_CLASSES, n_per_play=0)


def test_genre_probabilities_of_the_explorer_sum_to_one_and_drop_unknown_characters():
    from gptlib.viz import genre_probabilities

    class Tok:
        stoi = {chr(97 + i): i for i in range(V)}

    model = GPTClassifier(tiny_gpt(), 3).eval()
    probs = genre_probabilities(model, Tok, "abc")
    assert probs.shape == (3,) and abs(probs.sum().item() - 1) < 1e-6
    assert torch.allclose(probs, genre_probabilities(model, Tok, "a!b?c"))   # unknown dropped
    assert genre_probabilities(model, Tok, "!?") is None
    expected = torch.softmax(model(torch.tensor([[0, 1, 2]]))[0][0], -1)
    assert torch.allclose(probs, expected)

def test_pad_batch_pads_left_and_right():
    idx, mask = pad_batch([[1, 2, 3], [4]], pad_id=9)
    assert idx.tolist() == [[1, 2, 3], [4, 9, 9]]
    assert mask.tolist() == [[True] * 3, [True, False, False]]
    idx, mask = pad_batch([[1, 2, 3], [4]], pad_id=9, side="left")
    assert idx.tolist() == [[1, 2, 3], [9, 9, 4]]
    assert mask.tolist() == [[True] * 3, [False, False, True]]


# ---- clear errors -------------------------------------------------------------------------------

def test_lora_errors_name_the_problem():
    model = tiny_gpt()
    with pytest.raises(ValueError,
                       match=r"'attn\.c_atn' matches no nn.Linear.*h\.<i>\.attn\.c_attn"):
        apply_lora(model, ("attn.c_atn",))
    with pytest.raises(ValueError, match="rank r must be an int >= 1"):
        apply_lora(model, ("attn.c_attn",), r=0)
    with pytest.raises(ValueError, match="rank r must be an int >= 1"):
        LoRALinear(nn.Linear(4, 4), r=0)
    apply_lora(model, ("attn.c_attn",))
    with pytest.raises(ValueError, match="already has LoRA"):
        apply_lora(model, ("c_attn",))


def test_classifier_errors_name_the_problem():
    backbone = tiny_gpt()
    with pytest.raises(ValueError, match=r"width n_embd=16.*\(in, out\) = \(32, 3\)"):
        GPTClassifier(backbone, K, head=nn.Linear(32, K))
    with pytest.raises(ValueError, match="n_classes must be an int >= 2"):
        GPTClassifier(backbone, 1)
    clf = GPTClassifier(backbone, K)
    x = ids((2, 5))
    with pytest.raises(ValueError, match=r"label 3 is outside the classes \[0, 3\)"):
        clf(x, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"label -1 is outside the classes"):
        clf(x, labels=torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match=r"labels must be an integer tensor of shape \(B,\)"):
        clf(x, labels=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"bool tensor of shape \(B, T_k\) = \(2, 5\).*\(2, 4\)"):
        clf(x, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"torch.int64.*mask\.bool\(\)"):
        clf(x, torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"rows \[1\] have no real token"):
        clf(x, torch.tensor([[True] * 5, [False] * 5]))
    with pytest.raises(ValueError, match=r"lengths must be in 1\.\.T=5"):
        clf(x, lengths=torch.tensor([5, 6]))
    with pytest.raises(ValueError, match="not both"):
        clf(x, torch.ones(2, 5, dtype=torch.bool), lengths=torch.tensor([5, 5]))


def test_freeze_finetune_and_loading_errors_name_the_problem(tmp_path):
    clf = GPTClassifier(tiny_gpt(), K)
    with pytest.raises(ValueError, match="unknown freeze mode 'top'"):
        freeze(clf, "top")
    with pytest.raises(ValueError, match=r"k in 0\.\.2"):
        freeze(clf, "last_k", 3)
    freeze(clf, "head").head.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        finetune(clf, toy_data(), cfg())
    with pytest.raises(ValueError, match="with 4 classes"):
        finetune(GPTClassifier(tiny_gpt(), 4), toy_data(), cfg())
    with pytest.raises(FileNotFoundError, match="holds no model gptlib can load"):
        load_backbone(tmp_path)
    long = toy_data(t=40)                               # tiny_gpt's context is shorter
    with pytest.raises(ValueError, match=r"sequences of \d+ tokens, more than the model's context"):
        finetune(GPTClassifier(tiny_gpt(), K), long, cfg())
    with pytest.raises(ValueError, match="checkpoint_dir and resume_from save and restore language"):
        train(GPTClassifier(tiny_gpt(), K), toy_data(), cfg(), task=ClassificationTask(),
              checkpoint_dir=tmp_path / "ckpt")


def test_genre_dataset_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown genre 'comedy'"):
        genre_dataset("val", CharIds, {"a": ["comedy"], "b": ["histories"]})
    with pytest.raises(ValueError, match="'tragedies' is in both class 'a' and class 'b'"):
        genre_dataset("val", CharIds, {"a": ["tragedies"], "b": ["tragedies", "roman"]})
    from gptlib.data import load_plays
    only_comedies = [p for p in load_plays("val") if p.genre == "comedies"]
    with pytest.raises(ValueError, match="class 'b' has no play in split 'val'"):
        genre_dataset("val", CharIds, {"a": ["comedies"], "b": ["histories"]}, plays=only_comedies)
