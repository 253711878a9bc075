"""Chapter 10: opening a trained GPT — attention patterns, per-head scores, head ablation.

Everything here works on an unmodified ``gptlib.model.GPT`` through PyTorch hooks (Elhage et al.
2021; Olsson et al. 2022), removed again when the ``with`` block ends:

- ``record_attention(model)``: the attention pattern each head actually used,
  ``(B, H, T, T_k)`` per layer, captured from the forward pass;
- ``previous_token_score`` / ``induction_score``: how much of a head's attention goes to the
  previous token, or to the token *after an earlier occurrence of the current token* (where an
  induction head looks: ``... A B ... A`` -> attend to ``B``, then copy it);
- ``k_composition``: from the weights alone, how much a later head's keys read what an earlier
  head wrote (Elhage et al. 2021's composition score);
- ``ablate_heads(model, [(layer, head), ...])``: zero those heads' outputs before the output
  projection ``c_proj``, i.e. remove exactly their contribution to the residual stream;
- ``logits_with_input_removed``: the same removal, but seen only by the queries, the keys or the
  values of one later layer — which of its inputs a later head reads an earlier head through
  (Q-, K- or V-composition), tested by cause and effect rather than read off the weights.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

__all__ = ["record_attention", "attention_patterns", "previous_token_score", "induction_score",
           "head_scores", "ablate_heads", "logits_with_input_removed", "k_composition"]


def _blocks(model):
    blocks = getattr(model, "h", None)
    if blocks is None or not all(hasattr(b, "attn") for b in blocks):
        raise TypeError(f"expected a gptlib GPT (blocks in model.h, each with .attn), got "
                        f"{type(model).__name__}")
    return blocks


@contextmanager
def record_attention(model):
    """``with record_attention(model) as patterns: model(idx)`` fills ``patterns`` with one
    ``(B, H, T, T_k)`` tensor per layer: softmax weights after masking, before dropout.

    A forward pre-hook asks each layer's ``MultiHeadAttention`` for ``return_weights=True`` (the
    written-out path, which computes its output from exactly these weights); a forward hook
    stores the weights and hands the block the output alone, so the block runs unchanged.
    """
    patterns: list[torch.Tensor] = []
    handles = []

    def pre(module, args, kwargs):
        module._record_caller_wants = kwargs.get("return_weights", False)
        return args, {**kwargs, "return_weights": True}

    def post(module, args, kwargs, output):
        y, weights = output
        patterns.append(weights.detach())
        return output if module._record_caller_wants else y

    try:
        for block in _blocks(model):
            handles.append(block.attn.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(block.attn.register_forward_hook(post, with_kwargs=True))
        yield patterns
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def attention_patterns(model, idx: torch.Tensor) -> list[torch.Tensor]:
    """The attention patterns of ``model`` on ``idx`` (B, T): a list of ``n_layer`` tensors
    ``(B, H, T, T)``; row ``t`` of head ``h`` is where position ``t`` looked."""
    was_training = model.training
    model.eval()
    try:
        with record_attention(model) as patterns:
            model(idx)
    finally:
        model.train(was_training)
    return patterns


def _check_pattern(pattern: torch.Tensor) -> None:
    if not isinstance(pattern, torch.Tensor) or pattern.ndim != 4 \
            or pattern.size(-1) != pattern.size(-2):
        raise ValueError(f"pattern must be one layer's attention (B, H, T, T), got "
                         f"{getattr(pattern, 'shape', type(pattern).__name__)}")


def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """(B, H, T, T) -> (H,): the mean attention weight from position t to t - 1 (t >= 1)."""
    _check_pattern(pattern)
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))


def induction_score(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B, H, T, T) and the input ``tokens`` (B, T) -> (H,): the induction score.

    For a query position ``t``, the induction targets are the keys ``j < t`` whose *previous*
    token equals the current one, ``tokens[j - 1] == tokens[t]``: the tokens that followed an
    earlier occurrence of ``tokens[t]``. The score is the attention on those keys, summed over
    them and averaged over the queries that have any (Olsson et al. 2022 measure it on repeated
    random tokens, where the target is the token after the first copy's occurrence).
    """
    _check_pattern(pattern)
    if not isinstance(tokens, torch.Tensor) or tokens.shape != pattern.shape[:1] + pattern.shape[2:3]:
        raise ValueError(f"tokens must be (B, T) = {tuple(pattern.shape[:1] + pattern.shape[2:3])}"
                         f", the inputs the pattern was computed on, got "
                         f"{getattr(tokens, 'shape', type(tokens).__name__)}")
    T = tokens.size(1)
    prev = torch.full_like(tokens, -1)
    prev[:, 1:] = tokens[:, :-1]                                   # prev[b, j] = tokens[b, j-1]
    target = prev[:, None, :] == tokens[:, :, None]                # (B, T_q, T_k)
    target &= torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril(-1)   # j < t
    has = target.any(dim=-1)                                       # (B, T_q)
    on_target = (pattern * target[:, None].to(pattern.dtype)).sum(-1)   # (B, H, T_q)
    if not has.any():
        raise ValueError("no position of tokens has an earlier occurrence of its token; "
                         "the induction score needs repeated tokens (e.g. a repeated segment)")
    return on_target.transpose(0, 1)[:, has].mean(dim=-1)


def head_scores(model, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"previous_token": (n_layer, H), "induction": (n_layer, H)}`` on ``tokens`` (B, T)."""
    patterns = attention_patterns(model, tokens)
    return {"previous_token": torch.stack([previous_token_score(p) for p in patterns]),
            "induction": torch.stack([induction_score(p, tokens) for p in patterns])}


@contextmanager
def ablate_heads(model, heads):
    """Inside the ``with`` block, the listed ``(layer, head)`` pairs output zeros.

    A head's output is its slice ``h*d:(h+1)*d`` of the merged heads (B, T, C) that ``c_proj``
    mixes into the residual stream (``y = merged @ W_O^T + b``); zeroing that slice removes its
    term ``W_O[:, h*d:(h+1)*d] @ out_h`` and nothing else (the bias ``b`` stays).
    """
    blocks = _blocks(model)
    heads = list(heads)
    n_head = blocks[0].attn.n_heads
    for item in heads:
        if (not isinstance(item, (tuple, list)) or len(item) != 2
                or not all(isinstance(v, int) for v in item)):
            raise ValueError(f"heads must be (layer, head) pairs of ints, got {item!r}")
        if not (0 <= item[0] < len(blocks) and 0 <= item[1] < n_head):
            raise ValueError(f"no head {tuple(item)}: the model has layers 0..{len(blocks) - 1} "
                             f"and heads 0..{n_head - 1}")
    handles = []

    def make_hook(cols, d):
        def hook(module, args):
            x = args[0].clone()
            for h in cols:
                x[..., h * d:(h + 1) * d] = 0.0
            return (x,) + tuple(args[1:])
        return hook

    try:
        for layer in sorted({layer for layer, _ in heads}):
            attn = blocks[layer].attn
            d = attn.head_dim
            cols = sorted({h for l, h in heads if l == layer})
            handles.append(attn.c_proj.register_forward_pre_hook(make_hook(cols, d)))
        yield model
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def k_composition(model, src_layer: int = 0, dst_layer: int = 1) -> torch.Tensor:
    """(H_src, H_dst): Elhage et al. (2021)'s K-composition score between every head of
    ``src_layer`` and every head of ``dst_layer``, computed from the weights alone.

    Head ``h`` of ``src_layer`` writes ``W_OV^h x`` into the residual stream, with
    ``W_OV^h = W_O^h W_V^h`` (C x C, rank <= d). Head ``g`` of ``dst_layer`` scores a query
    ``x_q`` against a key ``x_k`` by the bilinear form ``x_q^T W_QK^g x_k``,
    ``W_QK^g = W_Q^g^T W_K^g`` (C x C). Its keys read the earlier head's output through
    ``W_QK^g W_OV^h``; the score is ``||W_QK^g W_OV^h||_F / (||W_QK^g||_F ||W_OV^h||_F)``, in
    [0, 1] (by submultiplicativity). ``ln_1``'s gain is folded into the weights that read the
    normalised stream; its per-token scaling (a positive number per token) is left out.
    """
    blocks = _blocks(model)
    if not 0 <= src_layer < dst_layer < len(blocks):
        raise ValueError(f"need 0 <= src_layer < dst_layer < {len(blocks)}, got {src_layer}, "
                         f"{dst_layer}")
    src, dst = blocks[src_layer], blocks[dst_layer]
    a, b = src.attn, dst.attn
    C, d = a.n_embd, a.head_dim
    g_src = src.ln_1.weight if getattr(src.ln_1, "weight", None) is not None else torch.ones(C)
    g_dst = dst.ln_1.weight if getattr(dst.ln_1, "weight", None) is not None else torch.ones(C)
    Wq, Wk, _ = b.c_attn.weight.split(C, dim=0)                 # (C, C) each: rows = outputs
    _, _, Wv = a.c_attn.weight.split(C, dim=0)
    Wo = a.c_proj.weight                                         # (C, C): columns = head slices
    out = torch.zeros(a.n_heads, b.n_heads)
    for h in range(a.n_heads):
        s = slice(h * d, (h + 1) * d)
        W_ov = Wo[:, s] @ (Wv[s] * g_src)                        # (C, C)
        for g in range(b.n_heads):
            t = slice(g * d, (g + 1) * d)
            W_qk = (Wq[t] * g_dst).T @ (Wk[t] * g_dst)           # (C, C)
            out[h, g] = (W_qk @ W_ov).norm() / (W_qk.norm() * W_ov.norm())
    return out


@torch.no_grad()
def logits_with_input_removed(model, idx: torch.Tensor, heads, layer: int,
                              parts: str) -> torch.Tensor:
    """(B, T, V) logits of ``model`` on ``idx`` (B, T) when the ``parts`` of ``layer``'s
    attention — any of ``"q"``, ``"k"``, ``"v"``, e.g. ``"k"`` or ``"qkv"`` — are computed from
    the residual stream *without* the outputs of ``heads`` (``(layer, head)`` pairs of earlier
    layers), and everything else from the intact stream.

    Two passes: with ``ablate_heads(model, heads)`` the input of ``layer``'s attention (after
    ``ln_1``) is recorded; then, intact, a forward hook on that layer's ``c_attn`` replaces the
    chosen thirds of its output ``[q | k | v]`` (B, T, 3C) by ``c_attn`` of the recorded input.
    In a 2-layer model removing layer 0's heads from layer 1's keys alone tests K-composition:
    the direct path of those heads to the logits, and layer 1's queries and values, are kept.
    """
    blocks = _blocks(model)
    if not (isinstance(parts, str) and parts and set(parts) <= set("qkv")
            and len(set(parts)) == len(parts)):
        raise ValueError(f"parts must name some of 'q', 'k', 'v' once each (e.g. 'k' or "
                         f"'qkv'), got {parts!r}")
    if not (isinstance(layer, int) and 0 < layer < len(blocks)):
        raise ValueError(f"layer must be a later layer, 1..{len(blocks) - 1}, got {layer!r}")
    heads = list(heads)
    if any(not isinstance(h, (tuple, list)) or len(h) != 2 or h[0] >= layer for h in heads):
        raise ValueError(f"heads must be (layer, head) pairs of layers before {layer}, got "
                         f"{heads!r}")
    attn = blocks[layer].attn
    recorded = []
    keep = attn.register_forward_pre_hook(lambda module, args: recorded.append(args[0]))
    was_training = model.training
    model.eval()
    try:
        with ablate_heads(model, heads):
            model(idx)
        keep.remove()                                   # removing twice is harmless
        C = attn.n_embd
        cols = [slice(i * C, (i + 1) * C) for i, name in enumerate("qkv") if name in parts]

        def swap(module, args, output):
            out = output.clone()
            # c_attn of the recorded input (not module(...), which would call this hook again)
            removed = torch.nn.functional.linear(recorded[0], module.weight, module.bias)
            for c in cols:
                out[..., c] = removed[..., c]
            return out

        handle = attn.c_attn.register_forward_hook(swap)
        try:
            logits = model(idx)[0]
        finally:
            handle.remove()
    finally:
        keep.remove()
        model.train(was_training)
    return logits
