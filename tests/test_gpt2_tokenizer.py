"""GPT-2's tokenizer format: gptlib reads vocab.json + merges.txt and gives the ids GPT-2 gives.

No download: the vocabulary here is learned by gptlib's BPE on a small mixed text (code, whitespace
runs, contractions, digits, emoji, several scripts) and written in GPT-2's format by this test's own
writer, with GPT-2's id order (the 256 bytes in ``bytes_to_unicode`` order, then the merges, then
``<|endoftext|>``) or a shuffled one. Two references read the same files:

- Hugging Face's ``GPT2Tokenizer`` (in transformers 5 the same class as ``GPT2TokenizerFast``, backed
  by the Rust ``tokenizers`` library);
- ``reference_encode`` below: GPT-2's published algorithm on *strings* of symbols (not gptlib's ids).

Unicode tables: characters assigned after the Unicode version of Python's ``unicodedata`` (14.0 for
Python 3.11) are left out of the random text: the ``regex`` package and ``tokenizers`` use tables of
different ages, and classify such characters differently (all 17,480 code points where the two
pre-tokenizers disagree on one-character contexts were unassigned in Unicode 14.0 when checked).
"""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib.tokenizer import (GPT2_PATTERN, PRETOKENIZE_PATTERN, BPETokenizer, bytes_to_unicode,
                              load_tokenizer, tokenizer_from_dict)

regex = pytest.importorskip("regex")
transformers = pytest.importorskip("transformers")

EOT = "<|endoftext|>"
TEXTS = [
    "def count_tokens(text_in, max_len=1_000):\n    return len(text_in.split())  # __init__\n",
    "snake_case_name = CONSTANT_VALUE + _private__x; foo_bar_baz",
    "trailing spaces   \nand tabs\t\t\tthen\n\n\nnewlines  \n",
    "   leading spaces, a lone space at the end ",
    "it's they're we've I'm you'll he'd can't IT'S THEY'RE WE'VE I'M YOU'LL HE'D DON'T",
    "'s 't 're 've 'm 'll 'd ''s 'S 'T x's",
    "Numbers: 0 12 345 6789 3.14159 1,000,000 2026-12-01 ١٢٣ ४२",
    "emoji 😀🙂👍🏽 👨‍👩‍👧 ☕ ✨ and flags 🇫🇷",
    "中文：语言模型是什么？日本語のテキスト。한국어 문장.",
    "العربية: مرحبا بالعالم — हिन्दी: नमस्ते दुनिया",
    "combining: e\u0301 n\u0303 a\u0308\u0304 Z\u0351\u0362 — and precomposed: é ñ",
    "controls \x1c\x1d\x1e\x1f between\x1cwords \x1f \x00\x07\x7f",
    "unicode spaces\u00a0nbsp\u2003em\u3000ideographic\u2028line\u0085nel",
    "Friends, Romans, countrymen, lend me your ears;\nI come to bury Caesar, not to praise him.",
    "",
    " ",
    "\n",
    "a",
]


def gpt2_writer(tok: BPETokenizer, directory, order: str = "gpt2"):
    """Write ``tok`` (gptlib's own layout: token b is byte b, token 256 + r merge r) as GPT-2's two
    files, with GPT-2's id order or a shuffled one; returns the two paths."""
    b2u = bytes_to_unicode()
    strings = ["".join(b2u[b] for b in tok.token_bytes(i)) for i in range(tok.vocab_size)]
    # GPT-2's encoder.json lists the byte characters in bytes_to_unicode's order, then the merges
    old_ids = list(b2u) + list(range(256, tok.vocab_size))
    if order == "shuffled":
        random.Random(0).shuffle(old_ids)
    encoder = {strings[old]: new for new, old in enumerate(old_ids)}
    encoder[EOT] = len(encoder)
    assert len(encoder) == tok.vocab_size + 1           # no two tokens with the same bytes
    vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
    vocab_path.write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "".join(f"{strings[a]} {strings[b]}\n"
                                                       for a, b in tok.merges), encoding="utf-8")
    return vocab_path, merges_path


class Reference:
    """GPT-2's algorithm as published, on strings: split with the pattern, map bytes to
    characters, then merge the lowest-ranked adjacent pair of symbols until none is ranked."""

    def __init__(self, vocab_path, merges_path):
        self.encoder = json.loads(vocab_path.read_text(encoding="utf-8"))
        lines = merges_path.read_text(encoding="utf-8").split("\n")[1:-1]
        self.ranks = {tuple(line.split(" ")): r for r, line in enumerate(lines)}
        self.b2u = bytes_to_unicode()
        self.pat = regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
                                 r"|\s+(?!\S)|\s+")

    def bpe(self, word: str) -> list[str]:
        symbols = list(word)
        while len(symbols) > 1:
            ranked = [(self.ranks[p], k) for k, p in enumerate(zip(symbols, symbols[1:]))
                      if p in self.ranks]
            if not ranked:
                break
            best = symbols[min(ranked)[1]], symbols[min(ranked)[1] + 1]
            merged, k = [], 0
            while k < len(symbols):
                if k + 1 < len(symbols) and (symbols[k], symbols[k + 1]) == best:
                    merged.append(symbols[k] + symbols[k + 1])
                    k += 2
                else:
                    merged.append(symbols[k])
                    k += 1
            symbols = merged
        return symbols

    def encode(self, text: str) -> list[int]:
        out = []
        for piece in self.pat.findall(text):
            word = "".join(self.b2u[b] for b in piece.encode("utf-8"))
            out.extend(self.encoder[s] for s in self.bpe(word))
        return out


@pytest.fixture(scope="module", params=["gpt2", "shuffled"])
def files(request, tmp_path_factory):
    corpus = "".join(TEXTS) * 4 + "the cat sat on the mat; the_cat_sat = 42\n" * 20
    trained = BPETokenizer.train(corpus, vocab_size=700, pattern=GPT2_PATTERN)
    assert trained.vocab_size > 450                      # plenty of merges to exercise
    directory = tmp_path_factory.mktemp(f"gpt2-{request.param}")
    vocab_path, merges_path = gpt2_writer(trained, directory, request.param)
    transformers.logging.set_verbosity_error()
    hf = transformers.GPT2Tokenizer.from_pretrained(str(directory), local_files_only=True)
    assert transformers.GPT2TokenizerFast is transformers.GPT2Tokenizer   # one class in 5.x
    return {"ours": BPETokenizer.from_gpt2_files(vocab_path, merges_path), "hf": hf,
            "ref": Reference(vocab_path, merges_path), "dir": directory, "trained": trained}


def hf_ids(hf, text, split_special=False):
    return hf(text, split_special_tokens=split_special)["input_ids"]


def test_the_hand_checkable_facts_of_gpt2s_format(files):
    ours = files["ours"]
    assert bytes_to_unicode()[ord(" ")] == "Ġ" and bytes_to_unicode()[ord("\n")] == "Ċ"
    assert sorted(bytes_to_unicode()) == list(range(256))
    assert len(set(bytes_to_unicode().values())) == 256
    assert ours.vocab_size == len(files["hf"]) == files["trained"].vocab_size + 1
    assert ours.special_tokens == {EOT: ours.vocab_size - 1}
    # the same tokens as the tokenizer the files were written from, under other ids
    for text in TEXTS:
        assert ([ours.token_bytes(i) for i in ours.encode(text)]
                == [files["trained"].token_bytes(i) for i in files["trained"].encode(text)])


def test_same_ids_as_hugging_face_and_the_reference_on_the_test_text(files):
    ours, hf, ref = files["ours"], files["hf"], files["ref"]
    n_ids = 0
    for text in TEXTS + ["".join(TEXTS)]:
        ids = ours.encode(text)
        assert ids == hf_ids(hf, text) == ref.encode(text), text
        assert ours.decode(ids) == hf.decode(ids) == text
        n_ids += len(ids)
    assert n_ids > 500


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=60))
def test_same_ids_on_random_text_from_all_of_unicode(files, text):
    ours = files["ours"]
    ids = ours.encode(text, disallowed_special=())
    assert ids == hf_ids(files["hf"], text, split_special=True) == files["ref"].encode(text)
    assert ours.decode(ids) == text


# the characters where splitting rules differ, mixed with letters that the merges join
TRICKY = list(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028_'-.,:;!?()#\"0123456789"
              "sStTrRevmldDaAxXé语言😀\u0301\u0928\u093e") + ["'s", "'ll", "'ve", "__", "  "]


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(TRICKY + TEXTS[:6]), max_size=25).map("".join))
def test_same_ids_on_random_mixes_of_the_tricky_characters(files, text):
    ids = files["ours"].encode(text)
    assert ids == hf_ids(files["hf"], text) == files["ref"].encode(text)
    assert files["ours"].decode(ids) == text


def test_decoding_a_split_character_gives_the_replacement_character_as_gpt2_does(files):
    ours, hf = files["ours"], files["hf"]
    ids = ours.encode("语")                              # three bytes, no merge joins them all
    assert len(ids) >= 2
    for part in (ids[:1], ids[1:], ids[:1] + ours.encode("a") + ids[1:]):
        assert ours.decode(part) == hf.decode(part)
        assert "\ufffd" in ours.decode(part)               # errors="replace", as GPT-2's encoder.py
    assert ours.decode(ids[:1] + ours.encode("a")).endswith("a")


def test_pre_tokenizer_equals_hugging_faces_and_differs_from_gptlibs_default_pattern():
    from tokenizers.pre_tokenizers import ByteLevel
    text = "snake_case __init__ a\x1c\x1db x  \t\n y's DON'T 12_34"
    ours = regex.findall(GPT2_PATTERN, text)
    b2u = bytes_to_unicode()
    theirs = ByteLevel(add_prefix_space=False).pre_tokenize_str(text)
    assert ["".join(b2u[b] for b in w.encode()) for w in ours] == [w for w, _ in theirs]
    assert ours[:3] == ["snake", "_", "case"] and " __" in ours    # underscores join punctuation
    assert "\x1c\x1d" in ours and "b" in ours                      # \x1c-\x1f are not whitespace
    assert ours[ours.index(" DON"):][:3] == [" DON", "'", "T"]    # lower-case contractions only
    assert ours[ours.index(" y"):][:2] == [" y", "'s"]
    import re
    default = re.findall(PRETOKENIZE_PATTERN, text)
    assert default != ours and " __" not in default and "\x1c\x1d" not in default


def test_endoftext_is_one_id_only_when_allowed(files):
    ours, hf = files["ours"], files["hf"]
    eot = ours.special_tokens[EOT]
    assert eot == hf.eos_token_id
    text = f"first document.{EOT}second_document {EOT}\n"
    allowed = ours.encode(text, allowed_special="all")
    assert allowed == ours.encode(text, allowed_special={EOT}) == hf_ids(hf, text)
    assert allowed.count(eot) == 2
    split = ours.encode(text, disallowed_special=())
    assert eot not in split and split == hf_ids(hf, text, split_special=True)
    assert split == files["ref"].encode(text)
    assert len(split) > len(allowed)
    for ids in (allowed, split):
        assert ours.decode(ids) == hf.decode(ids) == text
    with pytest.raises(ValueError, match=r"contains the special token '<\|endoftext\|>' at "
                                         r"position 15; pass allowed_special="):
        ours.encode(text)
    with pytest.raises(ValueError, match="contains the special token"):
        ours.encode(text, disallowed_special={EOT})
    with pytest.raises(TypeError, match=r"must be 'all' or a set of special tokens such as "
                                        r"\{'<\|endoftext\|>'\}"):
        ours.encode(text, allowed_special=EOT)
    with pytest.raises(ValueError, match=r"\['<\|im_end\|>'\] not special tokens of this "
                                         r"tokenizer \(it has \['<\|endoftext\|>'\]\)"):
        ours.encode(text, allowed_special={"<|im_end|>"})
    assert ours.encode("no special token here") == hf_ids(hf, "no special token here")
    # gptlib's own tokenizers have no special tokens: the text is ordinary text
    plain = files["trained"]
    assert plain.encode(EOT) == plain.encode(EOT, disallowed_special=())
    with pytest.raises(ValueError, match="it has none"):
        plain.encode(EOT, allowed_special={EOT})


def test_save_load_and_writing_gpt2_files_keep_every_id(files, tmp_path):
    ours, hf = files["ours"], files["hf"]
    text = "".join(TEXTS) + EOT + "tail_end  "
    expected = ours.encode(text, allowed_special="all")
    again = tokenizer_from_dict(json.loads(json.dumps(ours.to_dict())))
    ours.save(tmp_path / "tok.json")
    loaded = load_tokenizer(tmp_path / "tok.json")
    (tmp_path / "out").mkdir()
    ours.to_gpt2_files(tmp_path / "out" / "vocab.json", tmp_path / "out" / "merges.txt")
    rewritten = BPETokenizer.from_gpt2_files(tmp_path / "out" / "vocab.json",
                                             tmp_path / "out" / "merges.txt")
    hf_again = transformers.GPT2Tokenizer.from_pretrained(str(tmp_path / "out"), local_files_only=True)
    for tok in (again, loaded, rewritten):
        assert tok.special_tokens == ours.special_tokens
        assert tok.encode(text, allowed_special="all") == expected
        assert tok.decode(expected) == text
    assert hf_ids(hf_again, text) == expected == hf_ids(hf, text)
    # gptlib's own layout can be written too (and read by Hugging Face), if it uses GPT-2's pattern
    trained = files["trained"]
    trained.to_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    hf_trained = transformers.GPT2Tokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert hf_ids(hf_trained, text, split_special=True) == trained.encode(text)
    with pytest.raises(ValueError, match="train with pattern=GPT2_PATTERN"):
        BPETokenizer.train("abc abc", 260).to_gpt2_files(tmp_path / "v", tmp_path / "m")


def write(directory, vocab, merges):
    v, m = directory / "vocab.json", directory / "merges.txt"
    v.write_text(vocab if isinstance(vocab, str) else json.dumps(vocab), encoding="utf-8")
    m.write_text(merges, encoding="utf-8")
    return v, m


def byte_vocab():
    return {u: i for i, u in enumerate(bytes_to_unicode().values())}


def test_malformed_gpt2_files_give_clear_errors(tmp_path):
    good = {**byte_vocab(), "Ġt": 256, EOT: 257}
    tok = BPETokenizer.from_gpt2_files(*write(tmp_path, good, "#version: 0.2\nĠ t\n"))
    assert tok.encode(" t") == [256] and tok.vocab_size == 258
    # without a #version line, and with Windows line ends, the file reads the same
    assert BPETokenizer.from_gpt2_files(*write(tmp_path, good, "Ġ t\r\n")).encode(" t") == [256]
    cases = [
        (good, "#version: 0.2\nĠt\n", r"merges.txt line 2: expected two tokens separated by one "
                                      r"space, got 'Ġt'"),
        (good, "#version: 0.2\nĠ t x\n", "line 2: expected two tokens"),
        (good, "#version: 0.2\nĠ Ġt\n", "joins b' ' and b' t' into b'  t', which is not in the "
                                        "vocabulary"),
        (good, "#version: 0.2\nĠ ĠX\n", r"line 2: token 'ĠX' is not in vocab.json"),
        ('{"a": 0, "a": 1}', "", r"duplicate token 'a' \(ids 0 and 1\)"),
        ({**good, "Ġx": 256}, "", r"tokens 'Ġt' and 'Ġx' share id 256"),
        ({**good, EOT: 300}, "", r"ids must be 0..257 with none missing; id 257 is missing"),
        ({**good, "Ġt": "256"}, "", r"the id of 'Ġt' is '256', not an int"),
        ({**good, "Ġt": 256.0}, "", "not an int"),
        ("[1, 2]", "", "expected a JSON object from token to id"),
        ("{not json", "", "is not valid JSON"),
        ({k: v for k, v in good.items() if k != "Ā"} | {"ĀĀ": good["Ā"]}, "",
         r"no token for byte\(s\) \[0\]"),
    ]
    for vocab, merges, message in cases:
        with pytest.raises(ValueError, match=message):
            BPETokenizer.from_gpt2_files(*write(tmp_path, vocab, merges))
    with pytest.raises(ValueError, match=r"special token '<\|im_end\|>' is not in"):
        BPETokenizer.from_gpt2_files(*write(tmp_path, good, ""), special_tokens=["<|im_end|>"])
    with pytest.raises(FileNotFoundError, match="no vocabulary file at .*missing.json"):
        BPETokenizer.from_gpt2_files(tmp_path / "missing.json", tmp_path / "merges.txt")
    with pytest.raises(FileNotFoundError, match="no merges file at .*missing.txt"):
        BPETokenizer.from_gpt2_files(tmp_path / "vocab.json", tmp_path / "missing.txt")
    # a listed control token may hold any characters; unlisted, it is refused
    odd = {**byte_vocab(), "<|im end|>": 256}
    with pytest.raises(ValueError, match=r"'<\|im end\|>' \(id 256\) has the character ' '"):
        BPETokenizer.from_gpt2_files(*write(tmp_path, odd, ""))
    tok = BPETokenizer.from_gpt2_files(*write(tmp_path, odd, ""), special_tokens="<|im end|>")
    assert tok.encode("x<|im end|>", allowed_special="all")[-1] == 256
