"""GPT-2 interoperability: Hugging Face ``transformers`` weights in and out of ``gptlib.model.GPT``.

``GPT(GPTConfig(pos_encoding="learned"))`` has GPT-2's architecture and GPT-2's parameter names
(``wte``, ``wpe``, ``h.{i}.ln_1``, ``h.{i}.attn.c_attn``, ...), so converting a state dict is a
renaming plus one twist: GPT-2 was written with a ``Conv1D`` layer that stores its weight as
(in, out), the transpose of ``nn.Linear``'s (out, in). The four such weights per block
(``attn.c_attn``, ``attn.c_proj``, ``mlp.c_fc``, ``mlp.c_proj``) are transposed on the way.

``transformers`` is an optional dependency: it is imported inside the functions that need it.
``load_hf_checkpoint`` does not need it at all (it reads ``config.json`` and safetensors files).

Reading GPT-2 itself (needs the network once, then the Hugging Face cache)::

    from gptlib.gpt2 import from_pretrained
    model = from_pretrained("gpt2")          # or "gpt2-medium", "gpt2-large", "gpt2-xl"

Nothing changes silently on the way: a model keeps the checkpoint's dtype (float64, bfloat16, ...)
unless ``dtype=`` asks for another, and the config's special-token ids (``bos_token_id``,
``eos_token_id``, ``pad_token_id``) are kept on the model as ``model.special_token_ids`` and
written back by ``to_hf``. Activations: ``gelu_new``, ``gelu_pytorch_tanh`` and ``gelu_fast`` are
all GPT-2's tanh approximation (``gelu_fast`` rounds the constant sqrt(2/pi) to 10 digits: equal to
``gelu_new`` within 1e-12 in float64); the exact erf ``gelu`` is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gptlib.model import GPT, GPTConfig

__all__ = ["config_from_hf", "hf_config_from", "from_hf_state_dict", "to_hf_state_dict", "from_hf",
           "to_hf", "load_hf_checkpoint", "from_pretrained", "SPECIAL_TOKEN_FIELDS"]

# Weights that GPT-2's Conv1D stores as (in, out): transposed to nn.Linear's (out, in).
_TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# What GPT-2 is, in GPTConfig's terms.
_GPT2_ARCH = {"pos_encoding": "learned", "norm": "layernorm", "norm_position": "pre", "bias": True,
              "causal": True, "residual": True, "tie_weights": True}
# Hugging Face's names for the special-token ids a config records.
SPECIAL_TOKEN_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id")
# Names Hugging Face gives GPT-2's tanh-approximated GELU (gelu_fast: constant rounded, < 1e-12 off).
_TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def config_from_hf(hf_config) -> GPTConfig:
    """A ``GPTConfig`` from a ``transformers.GPT2Config`` (or the dict of its ``config.json``).

    Rejects GPT-2 variants that ``GPT`` does not implement (another activation or MLP width,
    unscaled attention, untied output layer, cross-attention), naming the field. ``GPT`` has one
    dropout rate, so ``embd_pdrop``, ``attn_pdrop`` and ``resid_pdrop`` must agree (fields the
    config leaves out are not compared; with none given the rate is 0).
    """
    if isinstance(hf_config, dict):
        get = hf_config.get
    else:
        def get(key, default=None):
            return getattr(hf_config, key, default)
    if get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"model_type: checkpoint has {get('model_type')!r}, gptlib reads 'gpt2'")
    if get("activation_function", "gelu_new") == "gelu":
        raise ValueError("activation_function: checkpoint has 'gelu', the exact (erf) GELU; gptlib's GPT "
                         "computes GPT-2's tanh approximation ('gelu_new'), which differs from it by up "
                         "to 4.7e-4 per activation, so the logits would not be the checkpoint's")
    n_embd = get("n_embd")
    unsupported = {
        "activation_function": (get("activation_function", "gelu_new"), _TANH_GELUS),
        "n_inner": (get("n_inner"), (None, 4 * n_embd)),
        "scale_attn_weights": (get("scale_attn_weights", True), (True,)),
        "scale_attn_by_inverse_layer_idx": (get("scale_attn_by_inverse_layer_idx", False), (False,)),
        "tie_word_embeddings": (get("tie_word_embeddings", True), (True,)),
        "add_cross_attention": (get("add_cross_attention", False), (False,)),
    }
    for field, (value, ok) in unsupported.items():
        if value not in ok:
            raise ValueError(f"{field}: checkpoint has {value!r}, gptlib's GPT supports {ok}")
    rates = {f: float(get(f)) for f in ("embd_pdrop", "attn_pdrop", "resid_pdrop") if get(f) is not None}
    if len(set(rates.values())) > 1:
        raise ValueError(f"{', '.join(rates)}: checkpoint has {rates}, but gptlib's GPT has one dropout "
                         f"rate for embeddings, attention weights and residual branches; set them equal "
                         f"(dropout only acts in training)")
    return GPTConfig(vocab_size=get("vocab_size"), block_size=get("n_positions"), n_layer=get("n_layer"),
                     n_head=get("n_head"), n_embd=n_embd, dropout=next(iter(rates.values()), 0.0),
                     layer_norm_eps=get("layer_norm_epsilon", 1e-5), **_GPT2_ARCH)


def hf_config_from(config: GPTConfig, special_token_ids: dict | None = None):
    """The ``transformers.GPT2Config`` for a GPT-2-shaped ``GPTConfig``.

    ``special_token_ids``: ``bos_token_id`` / ``eos_token_id`` / ``pad_token_id`` (each an id or
    ``None``); by default bos and eos are the last id, as GPT-2's ``<|endoftext|>`` (50256) is."""
    from transformers import GPT2Config

    _check_gpt2_arch(config)
    last = config.vocab_size - 1   # GPT-2's <|endoftext|> is its last token, 50256
    ids = _check_special_token_ids(special_token_ids if special_token_ids is not None else
                                   {"bos_token_id": last, "eos_token_id": last}, config.vocab_size,
                                   check_range=not getattr(special_token_ids, "from_hf", False))
    return GPT2Config(vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
                      n_layer=config.n_layer, n_head=config.n_head, activation_function="gelu_new",
                      resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout,
                      layer_norm_epsilon=config.layer_norm_eps, tie_word_embeddings=True,
                      **{field: ids.get(field) for field in SPECIAL_TOKEN_FIELDS})


def _check_special_token_ids(ids, vocab_size: int, check_range: bool = True) -> dict:
    """Only the three known fields, each ``None``, an id or a list of ids (inside the vocabulary,
    unless they come unchanged from a Hugging Face config, which may hold any)."""
    if not isinstance(ids, dict):
        raise TypeError(f"special_token_ids must be a dict with keys {SPECIAL_TOKEN_FIELDS}, got "
                        f"{type(ids).__name__}")
    unknown = sorted(set(ids) - set(SPECIAL_TOKEN_FIELDS))
    if unknown:
        raise ValueError(f"special_token_ids: unknown field(s) {unknown}; known: {SPECIAL_TOKEN_FIELDS}")
    for field, value in ids.items():
        for i in (value if isinstance(value, (list, tuple)) else [value]):
            if i is None:
                continue
            if not isinstance(i, int) or isinstance(i, bool):
                raise TypeError(f"{field} must be a token id (int) or None, got {i!r}")
            if check_range and not 0 <= i < vocab_size:
                raise ValueError(f"{field} {i} is outside the vocabulary (0..{vocab_size - 1})")
    return dict(ids)


class _HFTokenIds(dict):
    """Special-token ids exactly as a Hugging Face config had them (written back unchecked)."""
    from_hf = True


def _special_token_ids_of(hf_config) -> dict:
    get = hf_config.get if isinstance(hf_config, dict) else lambda k: getattr(hf_config, k, None)
    return _HFTokenIds({field: get(field) for field in SPECIAL_TOKEN_FIELDS})


def _check_dtype(dtype) -> None:
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch.dtype (e.g. torch.float32) or None to "
                        f"keep the checkpoint's, got {dtype!r}")


def _check_gpt2_arch(config: GPTConfig) -> None:
    wrong = {k: getattr(config, k) for k, v in _GPT2_ARCH.items() if getattr(config, k) != v}
    if wrong:
        raise ValueError(f"GPT-2 has {_GPT2_ARCH}; this config differs in {wrong}")


def _strip(sd: dict) -> dict:
    """HF keys without the ``transformer.`` prefix, minus old checkpoints' causal-mask buffers."""
    out = {}
    for key, value in sd.items():
        key = key.removeprefix("transformer.")
        if not (key.endswith(".attn.bias") or key.endswith(".attn.masked_bias")):
            out[key] = value
    return out


def _check_shapes(sd: dict, config: GPTConfig) -> None:
    """Compare the sizes a state dict implies with ``config``; name the first field that differs."""
    for key in ("wte.weight", "wpe.weight"):
        if key not in sd:
            raise ValueError(f"the state dict has no {key!r}; is this a GPT-2 checkpoint? "
                             f"keys start with {sorted(sd)[:4]}")
    layers = {int(k.split(".")[1]) for k in sd if k.startswith("h.")}
    found = {"vocab_size": sd["wte.weight"].shape[0], "n_embd": sd["wte.weight"].shape[1],
             "block_size": sd["wpe.weight"].shape[0], "n_layer": max(layers) + 1 if layers else 0}
    for field, value in found.items():
        if value != getattr(config, field):
            raise ValueError(f"{field}: checkpoint has {value}, config says {getattr(config, field)}")


def from_hf_state_dict(sd: dict, config: GPTConfig, dtype: torch.dtype | None = None) -> GPT:
    """A ``GPT`` holding the weights of a Hugging Face GPT-2 state dict (``GPT2LMHeadModel`` or
    ``GPT2Model`` keys). Conv1D weights are transposed; a mismatch with ``config`` raises.

    ``dtype``: the model's parameter dtype; ``None`` keeps the state dict's (which must then be
    one floating-point dtype for all weights)."""
    _check_gpt2_arch(config)
    _check_dtype(dtype)
    sd = _strip(sd)
    _check_shapes(sd, config)
    dtypes = {v.dtype for v in sd.values() if torch.is_tensor(v) and v.is_floating_point()}
    if dtype is None and len(dtypes) > 1:
        raise ValueError(f"the state dict mixes dtypes {sorted(map(str, dtypes))}; pass dtype= to "
                         f"choose the model's")
    dtype = dtype or next(iter(dtypes), torch.float32)
    if "lm_head.weight" in sd and not torch.equal(sd.pop("lm_head.weight"), sd["wte.weight"]):
        raise ValueError("lm_head.weight differs from wte.weight; gptlib's GPT ties them, as GPT-2 does")
    ours = {}
    for key, value in sd.items():
        value = value.t() if key.endswith(_TRANSPOSED) else value        # Conv1D (in, out) -> (out, in)
        ours["pos.wpe.weight" if key == "wpe.weight" else key] = value
    ours["lm_head.weight"] = ours["wte.weight"]
    model = GPT(config).to(dtype)
    missing, unexpected = model.load_state_dict(ours, strict=False)
    if missing or unexpected:
        raise ValueError(f"state dict does not match GPT-2's layout: missing {missing}, "
                         f"unexpected {unexpected}")
    return model


def to_hf_state_dict(model: GPT) -> dict:
    """The model's weights under ``GPT2LMHeadModel``'s names, Conv1D weights transposed back."""
    _check_gpt2_arch(model.config)
    out = {}
    for key, value in model.state_dict().items():
        hf_key = "lm_head.weight" if key == "lm_head.weight" else \
            "transformer." + ("wpe.weight" if key == "pos.wpe.weight" else key)
        out[hf_key] = value.t().contiguous() if key.endswith(_TRANSPOSED) else value
    return out


def from_hf(hf_model, dtype: torch.dtype | None = None) -> GPT:
    """A ``GPT`` equal to a ``transformers`` ``GPT2LMHeadModel`` (same train/eval mode, and the
    same dtype unless ``dtype`` says otherwise). The config's bos/eos/pad ids are kept in
    ``model.special_token_ids``."""
    model = from_hf_state_dict(hf_model.state_dict(), config_from_hf(hf_model.config), dtype)
    model.special_token_ids = _special_token_ids_of(hf_model.config)
    return model.train(hf_model.training)


def to_hf(model: GPT, special_token_ids: dict | None = None):
    """A ``transformers.GPT2LMHeadModel`` equal to ``model`` (same device, dtype, train/eval mode).

    Its config's bos/eos/pad ids are ``special_token_ids`` if given, else those a model read from
    Hugging Face keeps in ``model.special_token_ids``, else GPT-2's convention (the last id)."""
    from transformers import GPT2LMHeadModel

    if special_token_ids is None:
        special_token_ids = getattr(model, "special_token_ids", None)
    hf_model = GPT2LMHeadModel(hf_config_from(model.config, special_token_ids))
    missing, unexpected = hf_model.load_state_dict(to_hf_state_dict(model), strict=False)
    if missing or unexpected:
        raise ValueError(f"GPT2LMHeadModel expects other weights: missing {missing}, unexpected {unexpected}")
    return hf_model.to(device=model.wte.weight.device, dtype=model.wte.weight.dtype).train(model.training)


def load_hf_checkpoint(directory, dtype: torch.dtype | None = None) -> GPT:
    """A ``GPT`` (in eval mode) from a directory written by ``save_pretrained``: ``config.json``
    plus ``model.safetensors`` (or shards listed in ``model.safetensors.index.json``). The weights
    keep the file's dtype unless ``dtype`` is given; bos/eos/pad ids go to ``model.special_token_ids``.

    Reads tensors with ``safetensors`` only — never pickles (``pytorch_model.bin``), which can
    run arbitrary code when loaded. Does not need ``transformers``.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {directory}; expected a directory written by "
                                f"save_pretrained")
    _check_dtype(dtype)
    hf_config = _read_json_object(directory / "config.json", "a Hugging Face config")
    config = config_from_hf(hf_config)
    index = directory / "model.safetensors.index.json"
    if (directory / "model.safetensors").is_file():
        files = [directory / "model.safetensors"]
    elif index.is_file():
        weight_map = _read_json_object(index, "a safetensors index").get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index} has no 'weight_map' (tensor name -> shard file); it is "
                             f"not an index written by save_pretrained")
        files = [directory / name for name in sorted(set(weight_map.values()))]
    else:
        raise FileNotFoundError(f"no model.safetensors in {directory}; gptlib reads only safetensors "
                                f"(not pickled .bin files): re-save with save_pretrained(...)")
    sd = {}
    for file in files:
        try:
            sd.update(load_file(str(file)))
        except Exception as err:     # SafetensorError (truncated, not safetensors) or OSError
            raise ValueError(f"{file} is not a readable safetensors file ({err}); it may be "
                             f"truncated or corrupt: download or save it again") from None
    model = from_hf_state_dict(sd, config, dtype)
    bad = model.nonfinite_parameters()
    if bad:
        raise ValueError(f"the weights in {directory} hold NaN or inf in {len(bad)} tensor(s), "
                         f"e.g. {bad[:3]}; the checkpoint is damaged or came from a run that "
                         f"diverged")
    model.special_token_ids = _special_token_ids_of(hf_config)
    return model.eval()


def _read_json_object(path: Path, what: str) -> dict:
    """The JSON object in ``path``, or a ValueError naming the file."""
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); expected {what}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a JSON {type(obj).__name__}, not an object; expected {what}")
    return obj


def from_pretrained(name: str = "gpt2", dtype: torch.dtype | None = None, **kwargs) -> GPT:
    """GPT-2 from the Hugging Face Hub (``"gpt2"``, ``"gpt2-medium"``, ``"gpt2-large"``,
    ``"gpt2-xl"``), in eval mode, in the checkpoint's dtype unless ``dtype`` is given. Needs
    ``transformers`` and, the first time, the network; ``kwargs`` go to
    ``GPT2LMHeadModel.from_pretrained`` (e.g. ``cache_dir``)."""
    from transformers import GPT2LMHeadModel

    _check_dtype(dtype)
    return from_hf(GPT2LMHeadModel.from_pretrained(name, dtype="auto", **kwargs), dtype).eval()
