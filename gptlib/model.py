"""Chapter 6: the assembled GPT — the pieces of chapters 1-5, stacked.

    idx (B, T) token ids
      -> wte: token embeddings (B, T, C)  + positions (``gptlib.positional``)  -> dropout
      -> n_layer x Block (``gptlib.block``): causal self-attention and MLP, residual
      -> ln_f -> lm_head (C -> V, weights tied to wte)      -> logits (B, T, V)

This is GPT-2 (Radford et al. 2019): a decoder-only transformer — no encoder, no cross-attention.
With ``GPTConfig()``'s defaults it has GPT-2 small's shape, and ``gptlib.gpt2`` loads GPT-2's
weights into it. Parameter and compute counting for the book sits at the end of the module:
``count_gpt_parameters`` (in total or by group) and ``count_gpt_flops_per_token``, closed forms
that ``GPT.flops_per_token`` and the explorers of ``gptlib.viz.parameters`` call.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

from gptlib.attention import KVCache
from gptlib.block import NORM_POSITIONS, Block
from gptlib.normalization import NORMS, build_norm
from gptlib.positional import POS_ENCODINGS, build_positional
from gptlib.validate import check_batch, check_bool, check_int, check_number, \
    check_padding_mask, check_position_ids

__all__ = ["GPTConfig", "GPT", "PARAMETER_GROUPS", "count_gpt_parameters",
           "count_gpt_flops_per_token", "training_flops", "ATTENTION_LAYOUTS"]

ATTENTION_LAYOUTS = ("dense", "alternating")


@dataclasses.dataclass
class GPTConfig:
    """The hyper-parameters of a GPT. Defaults: GPT-2 small (124M parameters).

    vocab_size V, block_size (context length, the longest input for learned/one-hot positions),
    n_layer blocks, n_head heads per attention layer, n_embd model width C (divisible by n_head),
    dropout (embeddings, attention weights, residual branches), bias (in Linear layers and
    LayerNorms), pos_encoding (one of ``POS_ENCODINGS``), norm_position ("pre": GPT-2; "post":
    original Transformer), norm ("layernorm" or "rmsnorm"), fused_attention (use PyTorch's fused
    kernel instead of the written-out attention), layer_norm_eps, causal (False removes the causal
    mask: the model then sees the tokens it predicts — only for chapter 3's demonstration),
    mlp (False: attention-only blocks, no MLP and no ln_2 — the models of Elhage et al. 2021 that
    chapter 10 takes apart).

    The loss ladder (chapters 1-7 measure each component's worth by removing it): norm "none"
    (no normalisation anywhere: the blocks' ``ln_1``/``ln_2`` and ``ln_f`` are identities),
    residual (False: no skip connections, each sublayer's output replaces its input),
    tie_weights (False: ``lm_head`` is its own V x C matrix instead of ``wte``'s).

    Chapter 9: attention_layout "dense" (every layer sees the whole causal context) or
    "alternating" (GPT-3, Brown et al. 2020: layers 0, 2, 4, ... dense, layers 1, 3, 5, ...
    locally banded, each token seeing its ``sparse_band`` most recent tokens;
    ``gptlib.masking.banded_causal_mask``). activation_checkpointing: in training, keep only each
    block's input and recompute its activations during backward (``torch.utils.checkpoint``;
    Chen et al. 2016): less memory, one more forward pass of compute.

    fast (the fast path): every layer on PyTorch's fused kernels — ``F.layer_norm``/``F.rms_norm``,
    ``F.gelu(approximate="tanh")``, ``F.scaled_dot_product_attention`` (``is_causal`` when no
    other mask or bias is needed) — and ``pretrain.make_optimizer`` picks the fused AdamW. The
    same function as the written-out teaching path (``fast=False``, the default), within float
    rounding (``tests/test_fast_path.py``). ``fast=True`` implies the fused attention;
    ``fused_attention=True`` alone switches only the attention (older configs use it).
    """

    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    pos_encoding: str = "learned"
    norm_position: str = "pre"
    norm: str = "layernorm"
    fused_attention: bool = False
    layer_norm_eps: float = 1e-5
    causal: bool = True
    attention_layout: str = "dense"
    sparse_band: int = 256
    activation_checkpointing: bool = False
    mlp: bool = True
    fast: bool = False
    residual: bool = True
    tie_weights: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd={self.n_embd} is not divisible by n_head={self.n_head}; "
                             f"each head gets n_embd / n_head features")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        for name, valid in (("pos_encoding", POS_ENCODINGS), ("norm_position", NORM_POSITIONS),
                            ("norm", NORMS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"GPTConfig.{name}={getattr(self, name)!r} is unknown; "
                                 f"choose one of {valid}")
        if self.pos_encoding == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"GPTConfig: rope needs an even head size, but n_embd / n_head = "
                             f"{self.n_embd // self.n_head}")
        if not isinstance(self.causal, bool):
            raise ValueError(f"GPTConfig.causal must be True or False, got {self.causal!r}")
        check_number("GPTConfig.layer_norm_eps", self.layer_norm_eps, low=0, low_open=True)
        for name in ("bias", "fused_attention", "fast", "residual", "tie_weights"):           # 'no' would be truthy
            check_bool(f"GPTConfig.{name}", getattr(self, name))
        if self.attention_layout not in ATTENTION_LAYOUTS:
            raise ValueError(f"GPTConfig.attention_layout={self.attention_layout!r} is unknown; "
                             f"choose one of {ATTENTION_LAYOUTS}")
        if not isinstance(self.sparse_band, int) or isinstance(self.sparse_band, bool) \
                or self.sparse_band < 1:
            raise ValueError(f"GPTConfig.sparse_band must be a positive int (how many recent "
                             f"tokens a banded layer sees), got {self.sparse_band!r}")
        if not isinstance(self.activation_checkpointing, bool):
            raise ValueError(f"GPTConfig.activation_checkpointing must be True or False, "
                             f"got {self.activation_checkpointing!r}")
        if not isinstance(self.mlp, bool):
            raise ValueError(f"GPTConfig.mlp must be True or False (False: attention-only "
                             f"blocks), got {self.mlp!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown GPTConfig field(s) {unknown}; valid fields are {sorted(known)}")
        return cls(**d)


class GPT(nn.Module):
    """A GPT language model: idx (B, T) int64 -> logits (B, T, V) over the next token.

    Sub-modules carry GPT-2's names: ``wte``, ``wpe`` (learned positions only), ``drop``, ``h``
    (the blocks), ``ln_f``, ``lm_head``. The positional encoding is ``pos``
    (``gptlib.positional``). ``lm_head.weight`` *is* ``wte.weight`` (weight tying, Press & Wolf
    2017): the same V x C matrix reads tokens in and scores them out.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.pos = build_positional(c.pos_encoding, block_size=c.block_size, n_embd=c.n_embd,
                                    n_heads=c.n_head)
        self.drop = nn.Dropout(c.dropout)
        self.h = nn.ModuleList(
            Block(c.n_embd, c.n_head, dropout=c.dropout, bias=c.bias, norm_position=c.norm_position,
                  norm=c.norm, fused=c.fused_attention, eps=c.layer_norm_eps, causal=c.causal,
                  mlp=c.mlp, fast=c.fast, residual=c.residual)
            for _ in range(c.n_layer))
        # (with post-LN the last block already ends in a norm; ln_f is kept so that both
        # variants share one layout)
        self.ln_f = build_norm(c.norm, c.n_embd, c.layer_norm_eps, bias=c.bias, fast=c.fast)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.wte.weight                  # tied: one (V, C) matrix
        self.apply(self._init_weights)
        # GPT-2 (Radford et al. 2019, sec. 2.3) scales the weights of residual layers at
        # initialisation by 1/sqrt(N), N the number of residual layers; the paper gives no base
        # value. The base std 0.02 and N = 2 * n_layer (two sublayers per block) are the
        # convention of Hugging Face's GPT2Model (initializer_range=0.02) and nanoGPT, followed
        # here: c_proj weights get std 0.02 / sqrt(2 * n_layer) (also for mlp=False blocks,
        # which have one residual layer each). With pre-LN each branch's output variance is then
        # about proportional to 1 / (2 * n_layer), so the sum of all branch outputs at
        # initialisation keeps about the same variance however deep the stack.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2's initialisation as Hugging Face and nanoGPT implement it: weights normal with
        standard deviation 0.02 (embeddings too), biases 0; norms keep weight 1, bias 0."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def wpe(self) -> nn.Embedding:
        """GPT-2's learned position table, ``pos.wpe`` (only for ``pos_encoding="learned"``)."""
        return self.pos.wpe

    def new_kv_cache(self) -> list[KVCache]:
        """An empty KV cache for incremental decoding: one ``KVCache`` per layer, each with buffers
        for the model's context (grown on demand if the positions have no limit)."""
        return [KVCache(self.pos.max_positions) for _ in self.h]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                kv_cache: list[KVCache] | None = None, padding_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None):
        """idx (B, T) int token ids -> ``(logits (B, T, V), loss)``.

        targets (B, T): the next token at every position; ``loss`` is the mean cross-entropy over
        the positions whose target is not -100 (None without targets). kv_cache: from
        ``new_kv_cache()``; idx then holds only the new tokens, whose positions start at
        ``kv_cache[0].length``, and the cache is extended in place.

        padding_mask (B, T_k) bool, T_k = cached + new length: **True at real tokens** (the
        opposite of ``torch.nn.MultiheadAttention``'s ``key_padding_mask``), at least one per row.
        Nobody attends to padding, and each row's positions count only its real tokens
        (``cumsum(mask) - 1``), so a left-padded row gets the logits it gets alone.
        position_ids (B, T) int: explicit positions of idx's tokens instead (as Hugging Face's
        ``position_ids``); with ALiBi and a KV cache the cached keys keep the positions the
        padding mask (or their index) gives them.
        """
        x = self.hidden_states(idx, kv_cache=kv_cache, padding_mask=padding_mask,
                               position_ids=position_ids)[-1]
        logits = self.lm_head(self.ln_f(x))                        # (B, T, V)
        loss = None
        if targets is not None:
            targets = self._check_targets(targets, idx)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss

    def hidden_states(self, idx: torch.Tensor, kv_cache: list[KVCache] | None = None,
                      padding_mask: torch.Tensor | None = None,
                      position_ids: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The residual stream: ``n_layer + 1`` tensors (B, T, C) — the embeddings (tokens plus
        positions, after dropout), then the output of each block (before ``ln_f``). Arguments
        as in ``forward`` (padding_mask: True at real tokens).

        Hugging Face's ``output_hidden_states=True`` returns the same, except that its last entry
        has ``ln_f`` applied.
        """
        offset = self._check_inputs(idx, kv_cache, padding_mask)
        t = idx.size(1)
        q_pos, k_pos = self._positions(idx, offset, padding_mask, position_ids)
        if q_pos is None:
            x = self.pos.embed(self.wte(idx), offset)              # positions offset..offset+T-1
            bias = self.pos.attn_bias(t, offset + t, offset, idx.device)           # (1, H, T, T_k)
            rope = self.pos.rope
        else:                                                      # each row its own positions
            x = self.pos.embed(self.wte(idx), offset, positions=q_pos)
            bias = self.pos.attn_bias(t, offset + t, offset, idx.device, positions=q_pos,
                                      key_positions=k_pos)                       # (B, H, T, T_k)
            rope = None if self.pos.rope is None else functools.partial(self.pos.rope,
                                                                        positions=q_pos)
        x = self.drop(x)                                           # (B, T, C)
        mask = None if padding_mask is None else padding_mask[:, None, None, :]   # (B, 1, 1, T_k)
        states = [x]
        for i, block in enumerate(self.h):
            layer_mask = self._layer_mask(i, mask, t, offset, idx.device)
            cache = None if kv_cache is None else kv_cache[i]
            if self.config.activation_checkpointing and self.training \
                    and torch.is_grad_enabled() and cache is None:
                from torch.utils.checkpoint import checkpoint     # recompute in backward
                x = checkpoint(block, x, layer_mask, bias, rope, None,
                               use_reentrant=False)
            else:
                x = block(x, layer_mask, bias, rope, cache)
            states.append(x)
        return states

    def _layer_mask(self, i: int, mask, t: int, offset: int, device):
        """Layer i's extra mask: None (dense), or the banded one for odd layers (alternating)."""
        if self.config.attention_layout == "dense" or i % 2 == 0:
            return mask
        from gptlib.masking import banded_causal_mask
        band = banded_causal_mask(t, self.config.sparse_band, offset + t, device=device)
        return band if mask is None else mask & band                # (B, 1, T, T_k)


    def _positions(self, idx, offset, padding_mask, position_ids):
        """Per-row positions ``(q_pos (B, T), k_pos (B, T_k))``, or ``(None, None)`` when every
        row's real tokens sit at offset..offset+T-1 (no explicit positions, and no padding before
        a real token: none, or right padding only)."""
        if position_ids is not None:
            q_pos = check_position_ids(position_ids, tuple(idx.shape), self.pos.max_positions)
            q_pos = q_pos.to(idx.device)
        elif padding_mask is None or not bool((padding_mask[:, 1:] & ~padding_mask[:, :-1]).any()):
            return None, None
        k_pos = None
        if padding_mask is not None:                              # count real tokens only
            k_pos = (padding_mask.long().cumsum(-1) - 1).clamp(min=0)              # (B, T_k)
        if position_ids is None:
            return k_pos[:, offset:], k_pos
        if k_pos is None:
            k_pos = torch.arange(offset + idx.size(1), device=idx.device).expand(idx.size(0), -1)
        return q_pos, torch.cat([k_pos[:, :offset], q_pos], dim=1)

    def _check_inputs(self, idx, kv_cache, padding_mask) -> int:
        """Validate the inputs at the model's boundary; return the position of idx's first token."""
        c = self.config
        if not isinstance(idx, torch.Tensor):
            raise TypeError(f"idx must be a tensor of token ids, got {type(idx).__name__}")
        if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
            raise TypeError(f"idx must hold integer token ids (torch.long), got {idx.dtype}; "
                            f"token ids are indices into the vocabulary, convert with idx.long()")
        if idx.ndim != 2 or idx.size(1) == 0:
            raise ValueError(f"idx must have shape (B, T) with T >= 1, got {tuple(idx.shape)}"
                             + ("; for a single sequence use idx[None]" if idx.ndim == 1 else ""))
        check_batch("idx", idx)
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= c.vocab_size:
            raise ValueError(f"token id {hi if hi >= c.vocab_size else lo} is outside the vocabulary "
                             f"of size {c.vocab_size}")
        offset = 0
        if kv_cache is not None:
            if not isinstance(kv_cache, (list, tuple)) or len(kv_cache) != c.n_layer \
                    or not all(isinstance(layer, KVCache) for layer in kv_cache):
                kinds = sorted({type(x).__name__ for x in kv_cache}) \
                    if isinstance(kv_cache, (list, tuple)) else None
                got = type(kv_cache).__name__ if kinds is None else \
                    f"{len(kv_cache)} items of type(s) {kinds}"
                raise ValueError(f"kv_cache must be a list of {c.n_layer} KVCache (one per layer), "
                                 f"got {got}; make one with model.new_kv_cache()")
            offset = kv_cache[0].length
        length = offset + idx.size(1)
        if self.pos.max_positions is not None and length > self.pos.max_positions:
            cached = f" ({offset} cached + {idx.size(1)} new)" if offset else ""
            raise ValueError(f"sequence length {length}{cached} exceeds the model's context of "
                             f"{self.pos.max_positions}; crop the input to its last "
                             f"{self.pos.max_positions} tokens (a {c.pos_encoding!r} position table "
                             f"has no rows beyond it)")
        if padding_mask is not None:
            check_padding_mask(padding_mask, (idx.size(0), length))
        return offset

    def _check_targets(self, targets, idx) -> torch.Tensor:
        if not isinstance(targets, torch.Tensor) or targets.is_floating_point() \
                or targets.shape != idx.shape:
            raise ValueError(f"targets must be an integer tensor of idx's shape {tuple(idx.shape)}, "
                             f"got {getattr(targets, 'dtype', type(targets).__name__)} "
                             f"{tuple(getattr(targets, 'shape', ()))}")
        real = targets[targets != -100]
        if real.numel() and (int(real.min()) < 0 or int(real.max()) >= self.config.vocab_size):
            bad = int(real.max()) if int(real.max()) >= self.config.vocab_size else int(real.min())
            raise ValueError(f"target id {bad} is outside the vocabulary of size "
                             f"{self.config.vocab_size} (use -100 for positions to ignore)")
        return targets.long()

    def nonfinite_parameters(self) -> list[str]:
        """Names of the parameters holding NaN or inf (empty when all are finite).

        ``forward`` does not check its activations (that would cost a pass over every tensor of
        every step); NaN weights make NaN logits. ``gptlib.generate`` calls this to say why the
        logits it was about to sample from are not finite.
        """
        return [n for n, p in self.named_parameters() if not bool(torch.isfinite(p).all())]

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Number of parameters; the tied ``lm_head``/``wte`` matrix counts once.

        ``non_embedding=True`` leaves out the position embeddings (as nanoGPT does): a table
        look-up costs no compute, whereas the token embedding, being tied, is also the output
        layer's weights. Kaplan et al. (2020) also leave out the token embedding; for their N,
        subtract ``model.wte.weight.numel()``.
        """
        n = sum(p.numel() for p in self.parameters())
        return n - sum(p.numel() for p in self.pos.parameters()) if non_embedding else n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token (forward + backward) at context ``seq_len`` (default
        block_size): ``6·N' + 12·n_layer·T·C``, N' the parameters less the look-up tables (the
        position table; the token table too if it is not tied to the output layer).

        ``count_gpt_flops_per_token`` for this model's config, where the count is explained (and
        checked against PyTorch's FLOP counter in ``tests/test_model.py``)."""
        c = self.config
        return count_gpt_flops_per_token(c.vocab_size, c.block_size, c.n_layer, c.n_embd, seq_len,
                                         c.bias, c.tie_weights, pos_encoding=c.pos_encoding,
                                         norm=c.norm, mlp=c.mlp)

    def crop_block_size(self, block_size: int) -> None:
        """Shrink the context to ``block_size`` (e.g. a smaller model from GPT-2's 1024), in place."""
        if not 1 <= block_size <= self.config.block_size:
            raise ValueError(f"block_size must be in 1..{self.config.block_size}, got {block_size}")
        self.pos.crop(block_size)
        self.config = dataclasses.replace(self.config, block_size=block_size)


PARAMETER_GROUPS = ("embeddings", "attention", "MLP", "norms")


def count_gpt_parameters(vocab_size: int, block_size: int, n_layer: int, n_embd: int,
                         bias: bool = True, tied: bool = True, *, pos_encoding: str = "learned",
                         norm: str = "layernorm", mlp: bool = True, non_embedding: bool = False,
                         by_group: bool = False) -> int | dict[str, int]:
    """The parameter count of a GPT in closed form: the one formula of the book (chapter 6).

    It equals ``GPT(config).num_parameters()`` for the same shape and switches (the tests and
    chapter 6 check it against models built on the meta device, ours and Hugging Face's). With
    C = n_embd, V = vocab_size, L = n_layer, T = block_size, GPT-2's architecture (the
    defaults: biases, LayerNorm, learned positions, tied output layer) holds::

        embeddings  V·C (token table) + T·C (learned position table)
        attention   L·(4C² + 4C)     c_attn C -> 3C, c_proj C -> C, with biases
        MLP         L·(8C² + 5C)     c_fc C -> 4C, c_proj 4C -> C, with biases
        norms       L·4C + 2C        ln_1, ln_2 per block and ln_f: a gain and a bias each

    so N = V·C + T·C + L·(12C² + 13C) + 2C: 124,439,808 for GPT-2 small (50257, 1024, 12, 768).

    Switches (as ``GPTConfig``'s): ``bias=False`` drops the Linear and LayerNorm biases;
    ``tied=False`` adds a separate V x C output layer (group ``"lm_head"``); ``pos_encoding``:
    only ``"learned"`` and ``"onehot"`` have a T x C table, the others no parameters;
    ``norm="rmsnorm"`` has a gain only, ``"none"`` nothing; ``mlp=False`` (attention-only
    blocks, chapter 10) keeps 4C² + 4C and one norm per block. ``non_embedding=True`` leaves out
    the position table, as ``GPT.num_parameters(non_embedding=True)`` does: in a tied model,
    the parameters that cost 6 FLOPs per token each (``count_gpt_flops_per_token``). Returns
    the total, or with ``by_group=True`` a dict over ``PARAMETER_GROUPS`` (plus ``"lm_head"``
    when untied) that sums to it.
    """
    for name, value in (("vocab_size", vocab_size), ("block_size", block_size),
                        ("n_layer", n_layer), ("n_embd", n_embd)):
        check_int(f"count_gpt_parameters: {name}", value, minimum=1)
    for name, value in (("bias", bias), ("tied", tied), ("mlp", mlp),
                        ("non_embedding", non_embedding), ("by_group", by_group)):
        check_bool(f"count_gpt_parameters: {name}", value)
    if pos_encoding not in POS_ENCODINGS:
        raise ValueError(f"count_gpt_parameters: pos_encoding={pos_encoding!r} is unknown; "
                         f"choose one of {POS_ENCODINGS}")
    if norm not in NORMS:
        raise ValueError(f"count_gpt_parameters: norm={norm!r} is unknown; choose one of {NORMS}")
    c, L = n_embd, n_layer
    norm_params = 0 if norm == "none" else 2 * c if norm == "layernorm" and bias else c
    table = block_size * c if pos_encoding in ("learned", "onehot") and not non_embedding else 0
    groups = {"embeddings": vocab_size * c + table,
              "attention": L * (4 * c * c + (4 * c if bias else 0)),   # c_attn, c_proj
              "MLP": L * (8 * c * c + (5 * c if bias else 0)) if mlp else 0,   # c_fc, c_proj
              "norms": L * (2 if mlp else 1) * norm_params + norm_params}      # ln_1, ln_2; ln_f
    if not tied:
        groups["lm_head"] = vocab_size * c
    return groups if by_group else sum(groups.values())


def count_gpt_flops_per_token(vocab_size: int, block_size: int, n_layer: int, n_embd: int,
                              seq_len: int | None = None, bias: bool = True, tied: bool = True,
                              *, pos_encoding: str = "learned", norm: str = "layernorm",
                              mlp: bool = True) -> int:
    """Training FLOPs per token (forward + backward) at context ``seq_len`` (default block_size),
    in closed form; ``GPT.flops_per_token`` is this function applied to the model's config.

    A matmul with an (n x m) weight costs 2nm FLOPs per token forward and twice that backward
    (Kaplan et al. 2020, sec. 2.1): 6 per parameter, counted for every parameter except the
    look-up tables (a look-up costs no arithmetic): N' = ``count_gpt_parameters(...,
    non_embedding=True)``, the parameters less the position table. N' keeps the tied token
    table, which is also the output layer's (C x V) matmul (Kaplan et al.'s non-embedding N
    leaves it out); with ``tied=False`` the token table is only looked up, and N' leaves it out
    (the separate output layer is counted instead). Attention adds the score and
    weighted-sum matmuls, ``QK^T`` and ``AV``: 2 x 2TC forward per layer, x3 for training,
    ``12 n_layer T C`` (Chowdhery et al. 2022, PaLM, app. B), as the written-out attention
    computes the full T x T square. So::

        FLOPs per token = 6·N' + 12·L·T·C

    Biases and norm gains are counted at 6 FLOPs each too, an overcount of a few per cent at
    most (they are additions and products per element, not matmuls); elementwise work (softmax,
    GELU, the norms) is not counted. Kaplan et al.'s Table 1 lists ``2 n_layer n_ctx d_attn``
    forward, half of the square's count (presumably because with a causal mask a token attends
    to about T/2 positions on average). Chapter 6 and ``tests/test_model.py`` check this count against
    ``torch.utils.flop_counter.FlopCounterMode`` on real forward and backward passes.
    """
    t = block_size if seq_len is None else check_int("count_gpt_flops_per_token: seq_len",
                                                     seq_len, minimum=1)
    n_compute = count_gpt_parameters(vocab_size, block_size, n_layer, n_embd, bias, tied,
                                     pos_encoding=pos_encoding, norm=norm, mlp=mlp,
                                     non_embedding=True)
    if not tied:                                  # the token table: a look-up, not a matmul
        n_compute -= vocab_size * n_embd
    return 6 * n_compute + 12 * n_layer * t * n_embd


def training_flops(n_params: float, n_tokens: float) -> float:
    """Training compute ≈ 6·N·D FLOPs for N parameters and D tokens (Kaplan et al. 2020):
    GPT-3 (174.6B parameters by the formula) on 300B tokens ≈ 3.14e23, as Brown et al. 2020 report."""
    return 6 * n_params * n_tokens
