"""Chapter 7: generation — turning next-token distributions into text, one token at a time.

A GPT only ever predicts the distribution of the *next* token. Generating is a loop: score the
sequence, pick a token from the last position's distribution, append it, repeat. How the token is
picked is the *decoding strategy* (``sample_next``)::

    greedy        the most likely token (temperature = 0)
    temperature   sample from softmax(logits / t): t < 1 sharpens, t > 1 flattens
    top-k         sample among the k most likely tokens only (Fan et al. 2018)
    top-p         sample among the smallest set of tokens whose probability reaches p
                  (nucleus sampling, Holtzman et al. 2020)

Incremental decoding with a key/value cache (``use_cache=True``): the prompt is run once and every
layer keeps its keys and values (``model.new_kv_cache()``); each later step feeds only the new
token, whose query attends to the cached keys. With L layers of width C, step t then costs
O(L(C^2 + tC)) (one position's projections and MLP, and its attention over t cached keys) instead
of O(L(tC^2 + t^2 C)) for re-running all t positions, and the result is the same (a test checks
the logits at every step). ``KVCache.append`` writes the new keys and values into preallocated
buffers, so a step copies only its own O(LC) numbers, not the whole cache. A model with a
position table (learned/one-hot positions) cannot see beyond its context: when the sequence
outgrows it, both paths keep only the last ``context`` tokens, and the cached path must rebuild
its cache every step, since every token's position changes. ``max_context`` sets such a limit
for any model: each step then conditions on the last ``max_context`` tokens only — the context a
model without a position table (RoPE, ALiBi, none) was trained on, which it can read beyond, but
was never taught to.

Batched generation of prompts of different lengths pads them on the *left* (so that every row's
last column is its newest token) and passes ``padding_mask`` (B, T), True at real tokens (the
opposite of ``torch.nn.MultiheadAttention``'s ``key_padding_mask``; ``gptlib.masking.padding_mask
(lengths, side="left")`` makes one). Nobody attends to padding and each row's positions count its
real tokens only, so each row continues exactly as it would alone (a test checks greedy decoding
against row-by-row runs and against Hugging Face's GPT-2).

Beam search (``beam_search``) is not a sampling rule but a search: it keeps the ``beam_width`` most
probable partial continuations at every step, so it looks for the single most probable
continuation, which greedy decoding only approximates one token at a time (Graves 2012;
Sutskever et al. 2014). Holtzman et al. (2020) show why that is not what one wants for open-ended
text: the most probable continuations are bland and repetitive.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import torch
from torch.nn import functional as F

from gptlib.validate import (check_batch, check_bool, check_finite, check_generator, check_int,
                             check_number, check_padding_mask)

__all__ = ["top_k_filter", "top_p_filter", "sample_next", "generate", "generate_text", "stream",
           "beam_search"]


def _check_logits(logits, finite: bool = True) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim < 1 \
            or logits.size(-1) == 0:
        raise ValueError(f"logits must be a floating tensor (..., V) with V >= 1, got "
                         f"{getattr(logits, 'dtype', type(logits).__name__)} "
                         f"{tuple(getattr(logits, 'shape', ()))}")
    if not finite:
        return
    check_finite("logits", logits, "the model's weights or inputs hold NaN/inf (check the "
                 "training loss), or a filter removed every token", allow_neg_inf=True)
    if bool((logits == float("-inf")).all(-1).any()):
        raise ValueError("a row of logits is all -inf: no token is allowed to be picked")


def _check_sampling(temperature, top_k, top_p) -> None:
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) \
            or not temperature >= 0 or temperature == float("inf"):
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got "
                         f"{temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be an int >= 1 (or None for no limit), got {top_k!r}")
    if top_p is not None and (not isinstance(top_p, (int, float)) or isinstance(top_p, bool)
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] (1 keeps every token; None for no limit), "
                         f"got {top_p!r}")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row; set the others to -inf. logits: (..., V).

    Ties with the k-th largest value are all kept, so a row may keep more than k tokens.
    """
    _check_logits(logits, finite=False)
    check_int("k", k, 1)
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]            # (..., 1) the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al. 2020): keep the smallest set of most likely tokens whose
    total probability is at least ``p``; set the other logits to -inf. logits: (..., V).

    Sorted by probability, token i is kept when the tokens before it hold less than p — so the
    most likely token is always kept, and the token that crosses p is kept too.
    """
    _check_logits(logits, finite=False)
    check_number("p", p, low=0, low_open=True, high=1)
    probs, order = torch.sort(F.softmax(logits, dim=-1), dim=-1, descending=True)
    mass_before = torch.cumsum(probs, dim=-1) - probs                # (..., V) sorted
    drop_sorted = mass_before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)   # back to vocab order
    return logits.masked_fill(drop, float("-inf"))


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick the next token of each row: logits (B, V) -> token ids (B,).

    ``temperature=0`` is greedy decoding (argmax; ``top_k``/``top_p`` then change nothing).
    Otherwise the logits are filtered by top-k (a ranking, which dividing by the temperature
    does not change, so it is taken before rounding could create ties), divided by the
    temperature, filtered by top-p (on the tempered distribution), and a token is drawn with
    ``generator``.
    """
    _check_sampling(temperature, top_k, top_p)
    _check_logits(logits)
    check_generator("generator", generator)
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float()
    if top_k is not None:        # by rank, which dividing cannot change (but rounding could tie)
        logits = top_k_filter(logits, top_k)
    logits = logits / temperature
    if bool((logits == float("inf")).any()):
        raise ValueError(f"temperature={temperature!r} is so small that logits / temperature "
                         f"overflows float32 to inf; use temperature=0 for greedy decoding, or a "
                         f"larger temperature")
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _check_idx(idx) -> None:
    if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.size(1) == 0 \
            or idx.is_floating_point() or idx.dtype == torch.bool:
        raise ValueError(f"idx must be a (B, T) integer tensor with T >= 1, got "
                         f"{getattr(idx, 'dtype', type(idx).__name__)} "
                         f"{tuple(getattr(idx, 'shape', ()))}"
                         + ("; for one sequence use idx[None]"
                            if getattr(idx, "ndim", 0) == 1 else ""))
    check_batch("idx", idx)


def _check_model(model) -> None:
    if not (hasattr(model, "config") and hasattr(model, "pos") and callable(model)):
        raise TypeError(f"model must be a gptlib GPT, got {type(model).__name__}")


def _check_model_logits(model, logits, step: int) -> None:
    """A model's raw logits are finite; if not, say whether its weights are the cause."""
    if bool(torch.isfinite(logits).all()):
        return
    names = model.nonfinite_parameters() if hasattr(model, "nonfinite_parameters") else []
    cause = (f"the parameters {names[:4]}{' ...' if len(names) > 4 else ''} hold NaN/inf (did "
             f"training diverge?)" if names else "its parameters are finite, so an activation "
             "overflowed (e.g. in float16) or the input embedding is not finite")
    raise ValueError(f"the model's next-token logits at generation step {step} contain NaN/inf: "
                     f"{cause}")


def _check_prompt_mask(padding_mask, idx):
    """A generation padding mask: (B, T) bool, True at real tokens, padding on the left."""
    if padding_mask is None:
        return None
    check_padding_mask(padding_mask, tuple(idx.shape))
    if not bool(padding_mask[:, -1].all()):
        rows = (~padding_mask[:, -1]).nonzero().flatten().tolist()
        raise ValueError(f"rows {rows} end in padding: generation appends each new token after "
                         f"the last column, so pad prompts on the left (padding_mask(lengths, "
                         f"side='left'))")
    return padding_mask.to(idx.device)


def _check_max_context(max_context, model) -> int | None:
    """The number of most recent tokens each step conditions on (None: no limit)."""
    context = model.pos.max_positions                     # None: no position table, no limit
    if max_context is None:
        return context
    if not isinstance(max_context, int) or isinstance(max_context, bool) or max_context < 1:
        raise ValueError(f"max_context must be an int >= 1 (how many of the most recent tokens "
                         f"each step conditions on), or None for the model's own limit; got "
                         f"{max_context!r}")
    if context is not None and max_context > context:
        raise ValueError(f"max_context={max_context} exceeds the model's context of {context} "
                         f"({model.config.pos_encoding!r} positions): its position table has no "
                         f"position {context} or later; pass max_context <= {context}, or None")
    return max_context


def _stop_ids(stop_tokens, vocab_size: int) -> list[int]:
    if stop_tokens is None:
        return []
    ids = [stop_tokens] if isinstance(stop_tokens, int) else list(stop_tokens)
    for t in ids:
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < vocab_size:
            raise ValueError(f"stop token {t!r} is not a token id of the vocabulary "
                             f"(0..{vocab_size - 1})")
    return ids


def stream(model, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, use_cache: bool = True,
           generator: torch.Generator | None = None,
           padding_mask: torch.Tensor | None = None, max_context: int | None = None
           ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(next_tokens (B,), logits (B, V))`` for each of ``max_new_tokens`` steps.

    idx (B, T): the prompt. ``logits`` are the model's raw next-token logits (before
    temperature and filtering). The model runs in eval mode without gradients; its mode is
    restored when the stream ends. See ``generate`` for the arguments.
    """
    _check_model(model)
    _check_sampling(temperature, top_k, top_p)
    _check_idx(idx)
    check_bool("use_cache", use_cache)
    check_generator("generator", generator)
    mask = _check_prompt_mask(padding_mask, idx)
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) \
            or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    context = _check_max_context(max_context, model)     # None: no limit
    if max_context is None and context is not None and idx.size(1) > context:
        raise ValueError(f"the prompt has {idx.size(1)} tokens but the model's context is "
                         f"{context} ({model.config.pos_encoding!r} positions); crop it to its "
                         f"last {context} tokens: idx[:, -{context}:]")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            seq, cache = idx, None
            for _ in range(max_new_tokens):
                window = seq if context is None else seq[:, -context:]
                keys = None if mask is None else mask[:, -window.size(1):]  # (B, T_window)
                if not use_cache:
                    logits = model(window, padding_mask=keys)[0][:, -1]  # all positions again
                elif cache is None or cache[0].length + 1 > (context or float("inf")) \
                        or cache[0].length + 1 != seq.size(1):
                    cache = model.new_kv_cache()                         # (re)fill the cache
                    logits = model(window, kv_cache=cache, padding_mask=keys)[0][:, -1]
                else:                                                    # only the new token
                    logits = model(seq[:, -1:], kv_cache=cache, padding_mask=mask)[0][:, -1]
                _check_model_logits(model, logits, seq.size(1) - idx.size(1))
                nxt = sample_next(logits, temperature, top_k, top_p, generator)
                seq = torch.cat([seq, nxt[:, None]], dim=1)
                if mask is not None:                                     # new tokens are real
                    mask = torch.cat([mask, mask.new_ones(mask.size(0), 1)], dim=1)
                yield nxt, logits
    finally:
        model.train(was_training)


def generate(model, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, stop_tokens=None,
             use_cache: bool = True, generator: torch.Generator | None = None,
             return_logits: bool = False, padding_mask: torch.Tensor | None = None,
             max_context: int | None = None):
    """Continue ``idx`` (B, T) by up to ``max_new_tokens`` tokens: returns (B, T + n).

    temperature: 0 for greedy, else the softmax temperature; top_k / top_p: sample only among
    the k most likely tokens / the nucleus of mass p (both may be combined). stop_tokens: a token
    id or ids; a row is finished once it emits one, later positions of that row repeat its
    stop token, and generation ends when every row is finished. use_cache: incremental decoding
    with the KV cache (False re-runs the whole window each step; same result, slower).
    generator: a ``torch.Generator`` for reproducible sampling. With ``return_logits=True``
    also returns the raw next-token logits of every step, (B, n, V). padding_mask (B, T) bool,
    True at real tokens (the opposite of torch.nn.MultiheadAttention's key_padding_mask), padding
    on the left: prompts of different lengths in one batch, each continued as it would be alone
    (the new tokens count as real). max_context: each step conditions on the last
    ``max_context`` tokens only (the prompt may be longer); default: the model's position table
    (learned positions; a longer prompt is then an error), or no limit (RoPE, ALiBi, none).
    Must be an int >= 1, and at most the table's size.
    """
    _check_model(model)
    _check_idx(idx)
    check_bool("return_logits", return_logits)
    stops = _stop_ids(stop_tokens, model.config.vocab_size)
    stop_t = torch.tensor(stops, dtype=torch.long, device=idx.device) if stops else None
    finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    first_stop = torch.zeros(idx.size(0), dtype=torch.long, device=idx.device)
    new, logits_all = [], []
    steps = stream(model, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   use_cache=use_cache, generator=generator, padding_mask=padding_mask,
                   max_context=max_context)
    with closing(steps):                     # leaving early restores the model's mode at once
        for nxt, logits in steps:
            if stop_t is not None:
                nxt = torch.where(finished, first_stop, nxt)    # a finished row repeats its stop
                hit = torch.isin(nxt, stop_t) & ~finished
                first_stop = torch.where(hit, nxt, first_stop)
                finished |= hit
            new.append(nxt)
            logits_all.append(logits)
            if stop_t is not None and bool(finished.all()):
                break
    out = torch.cat([idx, torch.stack(new, dim=1)], dim=1) if new else idx.clone()
    if return_logits:
        v = model.config.vocab_size
        return out, (torch.stack(logits_all, dim=1) if logits_all
                     else torch.empty(idx.size(0), 0, v))
    return out


def generate_text(model, tokenizer, prompt: str, max_new_tokens: int, *, stop=None,
                  temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  use_cache: bool = True, generator: torch.Generator | None = None,
                  max_context: int | None = None) -> str:
    """Continue the text ``prompt``; return only the continuation (a ``str``).

    stop: a string or list of strings; generation ends at the first occurrence of any of them in
    the continuation, which is cut just before it (the stop string is not returned).
    max_context: as in ``generate``.
    """
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if any(not isinstance(s, str) or not s for s in stops):
        raise ValueError(f"stop must be a non-empty string or a list of them, got {stop!r}")
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("prompt must be a non-empty string; a GPT needs at least one token to "
                         "condition on")
    _check_model(model)
    n_tok, n_model = getattr(tokenizer, "vocab_size", None), model.config.vocab_size
    if isinstance(n_tok, int) and n_tok < n_model:
        raise ValueError(f"the tokenizer has {n_tok} tokens but the model's vocabulary has "
                         f"{n_model}: ids {n_tok}..{n_model - 1} the model may generate cannot be "
                         f"decoded; use the tokenizer the model was trained with")
    device = next(model.parameters()).device
    ids = tokenizer.encode(prompt)
    if ids and max(ids) >= n_model:
        raise ValueError(f"the tokenizer encodes the prompt to id {max(ids)}, outside the model's "
                         f"vocabulary of {n_model}; use the tokenizer the model was trained with")
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    ids: list[int] = []
    text = ""
    steps = stream(model, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   use_cache=use_cache, generator=generator, max_context=max_context)
    with closing(steps):
        for nxt, _ in steps:
            ids.append(int(nxt[0]))
            text = tokenizer.decode(ids)
            cuts = [text.find(s) for s in stops if s in text]
            if cuts:
                return text[:min(cuts)]
    return text


def beam_search(model, idx: torch.Tensor, max_new_tokens: int, beam_width: int, *,
                max_context: int | None = None, return_beams: bool = False):
    """The most probable continuation of ``idx`` (B, T) that a beam of ``beam_width`` finds.

    Beam search (Graves 2012, "Sequence Transduction with Recurrent Neural Networks";
    Sutskever et al. 2014, "Sequence to Sequence Learning with Neural Networks") scores a
    continuation ``y_1 .. y_n`` by its log-probability, ``sum_i log p(y_i | prompt, y_<i)``
    (natural log). Each of the ``n = max_new_tokens`` steps extends every kept continuation
    (a *beam*) by every token of the vocabulary, ``w * V`` candidates per row, and keeps the
    ``beam_width`` with the highest score. Width 1 is greedy decoding; a width of at least
    ``V ** (n - 1)`` keeps every prefix and so returns the exact most probable continuation of
    ``n`` tokens. In between it is a heuristic: the best final continuation can have been
    dropped early. All beams have the same length (there are no stop tokens), so no length
    normalisation is needed. For open-ended text the most probable continuation is typically
    dull and repetitive (Holtzman et al. 2020), which is why text is usually *sampled*.

    Each step re-runs the model on the last ``max_context`` (default: the position table's
    size) tokens of all ``B * beam_width`` beams, with no KV cache, since the beams are
    reordered at every step. Scores are accumulated in float64, so adding a score to a
    row of log-probabilities cannot round two candidates into a tie.

    Returns ``(tokens (B, T + n), scores (B,))``: the best beam of each row and its score, or
    with ``return_beams=True`` all kept beams, best first, ``(B, k, T + n)`` and ``(B, k)``,
    ``k = min(beam_width, V ** n)`` (``k = 1`` when ``n = 0``).
    """
    _check_model(model)
    _check_idx(idx)
    check_int("beam_width", beam_width, 1)
    check_bool("return_beams", return_beams)
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) \
            or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    context = _check_max_context(max_context, model)
    if max_context is None and context is not None and idx.size(1) > context:
        raise ValueError(f"the prompt has {idx.size(1)} tokens but the model's context is "
                         f"{context} ({model.config.pos_encoding!r} positions); crop it to its "
                         f"last {context} tokens: idx[:, -{context}:], or pass max_context")
    B, V = idx.size(0), model.config.vocab_size
    beams = idx[:, None, :]                                              # (B, w, L), w = 1
    scores = torch.zeros(B, 1, dtype=torch.float64, device=idx.device)   # (B, w)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for step in range(max_new_tokens):
                w, L = beams.size(1), beams.size(2)
                flat = beams.reshape(B * w, L)
                window = flat if context is None else flat[:, -context:]
                logits = model(window)[0][:, -1]                         # (B * w, V)
                _check_model_logits(model, logits, step)
                logp = F.log_softmax(logits.double(), dim=-1).view(B, w, V)
                candidates = (scores[..., None] + logp).view(B, w * V)   # (B, w * V)
                top = torch.topk(candidates, min(beam_width, w * V), dim=-1)
                parent, token = top.indices // V, top.indices % V        # (B, k) each
                beams = torch.cat([beams.gather(1, parent[..., None].expand(-1, -1, L)),
                                   token[..., None]], dim=2)             # (B, k, L + 1)
                scores = top.values
    finally:
        model.train(was_training)
    if return_beams:
        return beams, scores
    return beams[:, 0], scores[:, 0]
