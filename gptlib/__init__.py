"""gptlib — the reference implementation behind *Inside GPT*.

One module per idea, imports flowing downward only::

    utils, tokenizer, data            (text and batches)
    attention, masking                (chapter 2, 3)
    normalization, block              (chapter 4: the norms; the MLP and the block)
    positional                        (chapter 5)
    model                             (chapter 6)
    pretrain, generate                (chapter 7)
    finetune                          (chapter 8)
    viz                               (figures; may import anything, nothing imports it)

Only the two helpers every chapter needs are re-exported here; import the rest by module,
e.g. ``from gptlib.attention import MultiHeadAttention``.
"""

from gptlib.utils import set_seed, show

__all__ = ["set_seed", "show"]
__version__ = "0.1.0"
