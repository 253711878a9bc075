"""gptlib.synthetic (chapter 10's sequences and their task), GPTConfig's attention-only option,
and the shipped in-context models: their logs reproduced by the command line, their claims."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptlib.checkpoint import load_pretrained
from gptlib.model import GPT, GPTConfig, count_gpt_parameters
from gptlib.pretrain import TrainConfig, train
from gptlib.runconfig import load_run_config, read_log
from gptlib.synthetic import FewShotRule, RepeatedSegments, SequenceTask, per_token_loss, prepare

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "data" / "pretrained"
SHIPPED = ("induction_1l", "induction_2l", "fewshot_small", "fewshot_large")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- the attention-only option -------------------------------------------------------------

def test_attention_only_blocks_have_no_mlp_and_fewer_parameters():
    kw = dict(vocab_size=16, block_size=64, n_layer=2, n_head=4, n_embd=64)
    full, attn = GPT(GPTConfig(**kw)), GPT(GPTConfig(**kw, mlp=False))
    assert all(b.mlp is None and b.ln_2 is None for b in attn.h)
    assert not any(".mlp." in n or ".ln_2." in n for n, _ in attn.named_parameters())
    C = 64
    assert full.num_parameters() == count_gpt_parameters(16, 64, 2, C)
    assert full.num_parameters() - attn.num_parameters() == 2 * (8 * C * C + 5 * C + 2 * C)
    idx = torch.randint(16, (2, 10), generator=gen())
    assert attn(idx)[0].shape == (2, 10, 16)


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_an_attention_only_block_is_the_residual_attention_alone(norm_position):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=16, mlp=False,
                          norm_position=norm_position)).eval()
    b = model.h[0]
    x = torch.randn(2, 8, 16)
    h = b.attn(b.ln_1(x) if norm_position == "pre" else x, causal=True)
    expected = x + h if norm_position == "pre" else b.ln_1(x + h)
    torch.testing.assert_close(b(x), expected)


def test_mlp_must_be_a_bool():
    with pytest.raises(ValueError, match="mlp must be True or False"):
        GPTConfig(mlp="no")
    assert GPTConfig.from_dict(GPTConfig(mlp=False).to_dict()).mlp is False


# --- the sequences ---------------------------------------------------------------------------

def test_repeated_segments_repeat_a_segment_at_a_varying_distance():
    src = RepeatedSegments(vocab_size=16, min_len=8, max_len=28)
    b = src.sample(500, 64, gen(1))
    assert b.tokens.shape == (500, 65) and b.x.shape == b.y.shape == (500, 64)
    assert b.tokens.dtype == torch.long and 0 <= b.tokens.min() and b.tokens.max() < 16
    torch.testing.assert_close(b.y, b.tokens[:, 1:])
    L, a, c = b.info["length"], b.info["a"], b.info["b"]
    assert L.min() >= 8 and L.max() <= 28 and (a + L <= c).all() and (c + L <= 65).all()
    for i in range(500):
        seg = b.tokens[i, a[i]:a[i] + L[i]]
        assert torch.equal(b.tokens[i, c[i]:c[i] + L[i]], seg)
        # the masks mark the segment's tokens 1..L-1 in each copy, as targets (t -> token t+1)
        assert torch.equal(b.y[i][b.masks["first"][i]], seg[1:])
        assert torch.equal(b.y[i][b.masks["repeat"][i]], seg[1:])
    assert len(set((c - a).tolist())) > 20                        # the distance varies
    assert torch.equal(src.sample(4, 64, gen(7)).tokens, src.sample(4, 64, gen(7)).tokens)
    assert not torch.equal(src.sample(4, 64, gen(7)).tokens, src.sample(4, 64, gen(8)).tokens)


def test_few_shot_rule_pairs_follow_each_sequences_own_permutation():
    src = FewShotRule(n_symbols=8, n_pairs=16)
    b = src.sample(300, 31, gen(2))
    assert b.tokens.shape == (300, 32) and src.vocab_size == 72
    queries, answers = b.tokens[:, 0::2], b.tokens[:, 1::2]
    xs = queries - 64
    assert xs.min() >= 0 and xs.max() < 8 and answers.max() < 64
    torch.testing.assert_close(answers // 8, xs)                            # x? then x->y
    rules = b.info["rules"]
    assert all(sorted(r.tolist()) == list(range(8)) for r in rules)          # permutations
    torch.testing.assert_close(answers % 8, rules.gather(1, xs))
    assert len({tuple(r.tolist()) for r in rules}) > 290                     # a rule each
    assert (b.y[:, 1::2] == -100).all() and torch.equal(b.y[:, 0::2], answers)   # answers only
    seen = b.info["seen"]
    assert not seen[:, 0].any()
    assert bool(seen[5, 3]) == bool((xs[5, :3] == xs[5, 3]).any())
    assert src.describe([64, 2, 71, 63]) == "a? a->C h? h->H"
    assert src.tokenizer().vocab_size == 72


@pytest.mark.parametrize("make, message", [
    (lambda: RepeatedSegments(max_len=40).sample(2, 64, gen()), "seq_len >= 79"),
    (lambda: RepeatedSegments(min_len=9, max_len=8), "min_len <= max_len"),
    (lambda: RepeatedSegments().sample(2, 64, 0), "torch.Generator"),
    (lambda: FewShotRule().sample(2, 32, gen()), "must be 31"),
    (lambda: prepare({"task": {"name": "nope"}}), "data.task"),
    (lambda: prepare({"task": {"name": "few_shot_rule", "pairs": 3}}), r"unknown key\(s\) \['pairs'\]"),
])
def test_bad_synthetic_inputs_are_clear_errors(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_a_perfect_copier_gets_zero_loss_on_the_repeat_and_the_metrics_say_so():
    src = RepeatedSegments(vocab_size=16)
    b = src.sample(64, 64, gen(3))
    # logits that put all mass on the true next token on the repeat, uniform elsewhere
    logits = torch.zeros(64, 64, 16)
    rep = b.masks["repeat"]
    logits[rep] = 50 * torch.nn.functional.one_hot(b.y[rep], 16).float()
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), b.y, reduction="none")
    m = src.metrics(losses, b, logits)
    assert m["repeat_loss"] < 1e-6
    assert m["first_loss"] == pytest.approx(torch.log(torch.tensor(16.0)).item(), rel=1e-5)


def test_sequence_task_trains_through_the_one_loop_and_logs_its_metrics():
    src = FewShotRule(n_symbols=4, n_pairs=6)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=11, n_layer=2, n_head=2, n_embd=32, mlp=False))
    cfg = TrainConfig(steps=60, batch_size=32, block_size=11, lr=3e-3, eval_every=30,
                      eval_batches=2)
    result = train(model, src, cfg, src, task=SequenceTask())
    last = result.history[-1]
    assert {"accuracy", "seen_accuracy", "unseen_accuracy", "val_loss"} <= set(last)
    assert last["val_loss"] < result.history[0]["train_loss"]
    # the logged accuracy is the one per_token_loss gives on the same held-out batches
    g = torch.Generator().manual_seed(cfg.seed + 1)
    b = src.sample(32, 11, g)
    b2 = src.sample(32, 11, g)
    acc = []
    for batch in (b, b2):
        _, logits = per_token_loss(model, batch)
        q = batch.masks["query"]
        acc.append((logits.argmax(-1) == batch.tokens[:, 1:])[q].float().mean())
    assert last["accuracy"] == pytest.approx(float(sum(acc) / 2), abs=1e-6)
    with pytest.raises(TypeError, match="SequenceTask's train_data"):
        train(model, torch.arange(100), cfg, task=SequenceTask())


# --- the shipped models ----------------------------------------------------------------------

def command_config(name):
    command = (PRETRAINED / name / "COMMAND").read_text().split()
    assert command[:4] == ["python", "-m", "gptlib.pretrain", "--config"]
    return command[4]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_command_line_reproduces_a_shipped_models_first_steps(tmp_path, name):
    n = 3
    subprocess.run([sys.executable, "-m", "gptlib.pretrain", "--config", command_config(name),
                    "--threads", "1", "--stop-after", str(n), "--out", str(tmp_path),
                    "--no-progress"], cwd=ROOT, check=True, capture_output=True)
    ours = read_log(tmp_path / "train_log.csv")
    shipped = read_log(PRETRAINED / name / "train_log.csv")[:n]
    assert [r["step"] for r in ours] == [1, 2, 3]
    for key, tol in (("lr", 1e-9), ("train_loss", 2e-4), ("grad_norm", 2e-3)):
        assert [r[key] for r in ours] == pytest.approx([r[key] for r in shipped], rel=tol), key


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_matches_its_config_and_log(name):
    model, tok, meta = load_pretrained(PRETRAINED / name)     # checks the recorded sha256 too
    config = load_run_config(ROOT / command_config(name))
    assert TrainConfig.from_dict(meta["train"]) == config["train"]
    assert all(meta["model"][k] == v for k, v in config["model"].items())
    assert (PRETRAINED / name / "model.safetensors").stat().st_size <= 2 * 2**20
    log = read_log(PRETRAINED / name / "train_log.csv")
    assert [r["step"] for r in log] == list(range(1, config["train"].steps + 1))
    assert log[-1]["val_loss"] == pytest.approx(meta["results"]["final_val_loss"], rel=1e-5)
    assert json.loads((PRETRAINED / name / "config.json").read_text())["model"]["mlp"] is False


def fresh_losses(model, placement, seed=2024, n=256):
    """(first-copy loss, repeat loss) on sequences of the shipped models' kind drawn with a
    generator no training or evaluation used (training: seed 0; evaluation: seed 1)."""
    b = RepeatedSegments(vocab_size=64, min_len=8, max_len=32, placement=placement).sample(
        n, 64, gen(seed))
    losses, _ = per_token_loss(model, b)
    return losses[b.masks["first"]].mean().item(), losses[b.masks["repeat"]].mean().item()


def fresh_gap(model, placement, **kw):
    first, repeat = fresh_losses(model, placement, **kw)
    return first - repeat


def test_what_the_shipped_induction_models_do_and_do_not_do():
    """Chapter 10's claims, on fresh sequences: the 2-layer model copies repeats (its repeat loss
    is far below its first-copy loss, for tiled repeats and for one repeat among random tokens)
    and the 1-layer model does not; the 2-layer model's layer-0 heads are previous-token heads and
    its layer-1 heads induction heads; ablating the two induction heads removes the copying, and
    so does ablating the previous-token heads they read."""
    from gptlib.interp import ablate_heads, head_scores
    two, _, _ = load_pretrained(PRETRAINED / "induction_2l")
    one, _, _ = load_pretrained(PRETRAINED / "induction_1l")
    chance = torch.log(torch.tensor(64.0)).item()
    for placement in ("tile", "random"):
        first, repeat = fresh_losses(two, placement)
        assert repeat < 1.0 and first > chance - 0.1             # copies; cannot foresee
        assert fresh_gap(one, placement) < 1.5                   # a statistic, not a copy
        assert fresh_gap(two, placement) > fresh_gap(one, placement) + 2.5
    seg = torch.randint(64, (128, 32), generator=gen(5))
    doubled = torch.cat([seg, seg], dim=1)
    s2, s1 = head_scores(two, doubled), head_scores(one, doubled)
    assert s1["previous_token"].max() < 0.1 and s1["induction"].max() < 0.2
    assert (s2["previous_token"][0] > 0.3).all() and (s2["induction"][0] < 0.1).all()
    assert (s2["induction"][1] > 0.6).all() and (s2["previous_token"][1] < 0.1).all()
    intact = fresh_gap(two, "tile")
    with ablate_heads(two, [(1, 0), (1, 1)]):                   # no induction heads: no copy
        assert fresh_gap(two, "tile") < 0.1 * intact
    with ablate_heads(two, [(0, 0), (0, 1)]):       # no previous-token heads: the 1-layer gap
        assert fresh_gap(two, "tile") < 1.5
    for head in ((1, 0), (1, 1)):              # one induction head alone still copies, less well
        with ablate_heads(two, [head]):
            assert 0.2 * intact < fresh_gap(two, "tile") < 0.8 * intact, head


def test_data_readme_lists_the_sha256_of_every_shipped_file():
    import hashlib
    readme = (ROOT / "data" / "README.md").read_text()
    for name in SHIPPED:
        for f in ("model.safetensors", "config.json", "train_log.csv", "COMMAND"):
            digest = hashlib.sha256((PRETRAINED / name / f).read_bytes()).hexdigest()
            assert f"| `pretrained/{name}/{f}` | `{digest}` |" in readme, (name, f)
    digest = hashlib.sha256((ROOT / "data" / "results" / "few_shot.json").read_bytes()).hexdigest()
    assert digest in readme
