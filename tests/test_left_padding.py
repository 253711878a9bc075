"""Left padding and batched generation: every row of a padded batch computes what it computes alone.

``GPT.forward`` derives each row's positions from its padding mask (or takes explicit
``position_ids``), for every positional encoding; ``generate(..., padding_mask=...)`` continues
prompts of different lengths in one batch exactly as each would be continued alone. Checked
against row-by-row runs and against Hugging Face's GPT-2 with ``attention_mask`` +
``position_ids`` (built from a config, no download).
"""

import pytest
import torch

from gptlib.generate import generate
from gptlib.masking import padding_mask
from gptlib.model import GPT, GPTConfig
from gptlib.positional import POS_ENCODINGS

LENGTHS = (3, 8, 5, 1)
V = 61


def tiny(pos_encoding, fused=False, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, block_size=24, n_layer=2, n_head=4, n_embd=32, pos_encoding=pos_encoding,
               fused_attention=fused)
    cfg.update(kw)
    model = GPT(GPTConfig(**cfg)).eval()
    with torch.no_grad():                   # LayerNorm weights away from 1/0, so they matter
        for name, p in model.named_parameters():
            if "ln" in name:
                p.add_(0.3 * torch.randn_like(p))
    return model


def left_padded(seqs, pad_id=0):
    T = max(len(s) for s in seqs)
    idx = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    for b, s in enumerate(seqs):
        idx[b, T - len(s):] = s
    return idx, padding_mask([len(s) for s in seqs], side="left")


def prompts(seed=1, lengths=LENGTHS):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, V, (n,), generator=g) for n in lengths]


def max_diff_to_alone(model, seqs, logits):
    T = logits.size(1)
    with torch.no_grad():
        return max((logits[b, T - len(s):] - model(s[None])[0][0]).abs().max().item()
                   for b, s in enumerate(seqs))


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
def test_left_padded_batch_equals_each_row_alone(pos_encoding, fused):
    model, seqs = tiny(pos_encoding, fused), prompts()
    idx, mask = left_padded(seqs)
    with torch.no_grad():
        logits = model(idx, padding_mask=mask)[0]
        # explicit positions give the same (and are what the mask derives)
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
        explicit = model(idx, padding_mask=mask, position_ids=pos)[0]
    assert max_diff_to_alone(model, seqs, logits) < 1e-5
    torch.testing.assert_close(explicit, logits)
    assert torch.isfinite(logits).all()        # pad queries attend to nothing: 0, not NaN


@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
def test_left_padding_through_the_kv_cache(pos_encoding):
    """The prompt in two chunks through the cache, then one token at a time: still each row alone."""
    model, seqs = tiny(pos_encoding), prompts(lengths=(4, 8, 6))
    idx, mask = left_padded(seqs)
    with torch.no_grad():
        cache = model.new_kv_cache()
        parts = [model(idx[:, :5], kv_cache=cache, padding_mask=mask[:, :5])[0]]
        for t in range(5, idx.size(1)):
            parts.append(model(idx[:, t:t + 1], kv_cache=cache, padding_mask=mask[:, :t + 1])[0])
    assert max_diff_to_alone(model, seqs, torch.cat(parts, 1)) < 1e-5


def test_without_derived_positions_left_padding_would_shift_rows():
    """The check above can fail: positions counted from column 0 (as before) change the logits."""
    model, seqs = tiny("learned"), prompts()
    idx, mask = left_padded(seqs)
    shifted = torch.arange(idx.size(1)).expand_as(idx)
    with torch.no_grad():
        wrong = model(idx, padding_mask=mask, position_ids=shifted)[0]
    assert max_diff_to_alone(model, seqs, wrong) > 1e-2


@pytest.mark.parametrize("pos_encoding", ["learned", "rope", "alibi", "sinusoidal"])
def test_explicit_position_ids_shift_invariance(pos_encoding):
    """position_ids move a sequence: relative encodings do not notice, absolute ones do."""
    model, (s,) = tiny(pos_encoding), prompts(lengths=(6,))
    with torch.no_grad():
        base = model(s[None])[0]
        moved = model(s[None], position_ids=torch.arange(7, 13)[None])[0]
    same = torch.allclose(base, moved, atol=1e-5)
    assert same == (pos_encoding in ("rope", "alibi"))


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
def test_batched_greedy_generation_equals_each_prompt_alone(pos_encoding, use_cache):
    model, seqs = tiny(pos_encoding), prompts()
    idx, mask = left_padded(seqs)
    n = 10
    batched = generate(model, idx, n, temperature=0, padding_mask=mask, use_cache=use_cache)
    for b, s in enumerate(seqs):
        alone = generate(model, s[None], n, temperature=0, use_cache=use_cache)
        assert torch.equal(batched[b, -n:], alone[0, -n:]), (pos_encoding, b)


def test_batched_generation_past_the_context_crops_each_row_like_alone():
    """Past block_size the window slides; each row still continues as it would alone."""
    model, seqs = tiny("learned", block_size=10), prompts(lengths=(3, 9, 6))
    idx, mask = left_padded(seqs)
    for use_cache in (True, False):
        batched = generate(model, idx, 8, temperature=0, padding_mask=mask, use_cache=use_cache)
        for b, s in enumerate(seqs):
            alone = generate(model, s[None], 8, temperature=0, use_cache=use_cache)
            assert torch.equal(batched[b, -8:], alone[0, -8:])


def test_generate_padding_mask_errors():
    model, seqs = tiny("learned"), prompts()
    idx, mask = left_padded(seqs)
    right = padding_mask(list(LENGTHS))
    with pytest.raises(ValueError, match=r"rows \[0, 2, 3\] end in padding.*pad prompts on the left"):
        generate(model, idx, 2, padding_mask=right)
    with pytest.raises(ValueError, match=r"padding_mask must be a bool tensor of shape \(B, T_k\) "
                                         r"= \(4, 8\).*mask.bool\(\)"):
        generate(model, idx, 2, padding_mask=mask.long())
    empty = mask.clone()
    empty[1] = False
    with pytest.raises(ValueError, match=r"rows \[1\] have no real token"):
        generate(model, idx, 2, padding_mask=empty)


def test_position_ids_errors():
    model = tiny("learned")
    idx = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"position_ids must be an integer tensor of idx's shape "
                                         r"\(B, T\) = \(2, 3\)"):
        model(idx, position_ids=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="position_ids must be >= 0, got -1"):
        model(idx, position_ids=torch.full((2, 3), -1))
    with pytest.raises(ValueError, match="position id 24 exceeds the model's context of 24"):
        model(idx, position_ids=torch.full((2, 3), 24))


transformers = pytest.importorskip("transformers")


def test_matches_hugging_face_with_attention_mask_and_position_ids():
    """HF's GPT2LMHeadModel given attention_mask + position_ids: the same logits at real tokens,
    and HF's own greedy generation per row equals gptlib's batched generation."""
    from gptlib.gpt2 import to_hf
    transformers.logging.set_verbosity_error()
    model, seqs = tiny("learned"), prompts()
    hf = to_hf(model).eval()
    idx, mask = left_padded(seqs)
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        ours = model(idx, padding_mask=mask)[0]
        theirs = hf(input_ids=idx, attention_mask=mask.long(), position_ids=pos).logits
    real = mask[..., None].expand_as(ours)
    assert (ours - theirs)[real].abs().max().item() < 1e-5
    n = 6
    batched = generate(model, idx, n, temperature=0, padding_mask=mask)
    with torch.no_grad():
        for b, s in enumerate(seqs):
            seq = s[None]
            for _ in range(n):                 # HF forward, greedy, one row at a time
                nxt = hf(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
                seq = torch.cat([seq, nxt], 1)
            assert torch.equal(batched[b, -n:], seq[0, -n:])


@pytest.mark.parametrize("pos_encoding", ["learned", "rope", "alibi"])
def test_padding_inside_a_row_is_skipped_by_the_positions_too(pos_encoding):
    """A pad between real tokens (e.g. after right padding, a new token appended): the tokens
    after it keep the positions they have without it."""
    model, (s,) = tiny(pos_encoding), prompts(lengths=(5,))
    holed = torch.cat([s[:2], torch.zeros(2, dtype=torch.long), s[2:]])[None]
    mask = torch.tensor([[True, True, False, False, True, True, True]])
    with torch.no_grad():
        logits = model(holed, padding_mask=mask)[0][0]
        alone = model(s[None])[0][0]
    torch.testing.assert_close(logits[mask[0]], alone, rtol=0, atol=1e-5)


@pytest.mark.parametrize("pos_encoding", ["rope", "alibi"])
def test_relative_encodings_see_gaps_in_explicit_positions(pos_encoding):
    """position_ids with a gap (0, 1, 2, 10, 11, 12): the keys before the gap are 10 positions
    away, not 3, so the logits after the gap change; moving every position by 5 changes nothing.
    (ALiBi must read the keys' positions from position_ids too, not their column.)"""
    model, (s,) = tiny(pos_encoding), prompts(lengths=(6,))
    gap = torch.tensor([[0, 1, 2, 10, 11, 12]])
    with torch.no_grad():
        contiguous = model(s[None])[0]
        gapped = model(s[None], position_ids=gap)[0]
        moved = model(s[None], position_ids=gap + 5)[0]
    torch.testing.assert_close(gapped[:, :3], contiguous[:, :3], rtol=0, atol=1e-5)
    assert (gapped[:, 3:] - contiguous[:, 3:]).abs().max() > 5e-5     # rounding: ~1e-7
    torch.testing.assert_close(moved, gapped, rtol=0, atol=1e-5)


@pytest.mark.parametrize("pos_encoding", ["learned", "rope", "alibi"])
def test_left_padding_without_the_causal_mask(pos_encoding):
    """causal=False (chapter 3's demonstration): every token also sees later keys, so ALiBi's
    distance must be |i - j| on both sides of the query; padded rows still equal each row alone."""
    model, seqs = tiny(pos_encoding, causal=False), prompts()
    idx, mask = left_padded(seqs)
    with torch.no_grad():
        logits = model(idx, padding_mask=mask)[0]
    assert max_diff_to_alone(model, seqs, logits) < 1e-5
