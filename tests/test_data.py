"""The prepared corpus (checksums, split by play) and the batches built from it."""

import hashlib
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

from gptlib.data import (CorpusError, data_dir, encode_text, get_batch, load_plays, load_text,
                         verify_corpus)
from gptlib.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parent.parent
GENRES = {"comedies", "histories", "problems", "roman", "romances", "tragedies"}


def test_checksums_match_and_readme_agrees():
    sums = verify_corpus()
    assert set(sums) == {"corpus/train.txt", "corpus/val.txt", "corpus/test.txt", "corpus/plays.json"}
    readme = (ROOT / "data" / "README.md").read_text()
    for name, digest in sums.items():
        assert digest in readme, f"data/README.md does not list the sha256 of {name}"


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    copy = tmp_path / "data"
    shutil.copytree(data_dir(), copy, ignore=shutil.ignore_patterns("pretrained", "*.py", "__pycache__"))
    monkeypatch.setenv("GPTLIB_DATA", str(copy))
    return copy


def test_an_altered_file_fails_loudly(data_copy):
    path = data_copy / "corpus" / "val.txt"
    text = path.read_text()
    path.write_text(text.replace("Macbeth", "MacBeth", 1))
    with pytest.raises(CorpusError, match=r"val.txt has been altered: its sha256 is [0-9a-f]{64}"):
        load_text("val")
    with pytest.raises(CorpusError, match="altered"):
        load_text("train")  # every load checks every file


def test_a_missing_file_fails_loudly(data_copy):
    (data_copy / "corpus" / "test.txt").unlink()
    with pytest.raises(CorpusError, match=r"test.txt is missing; restore it"):
        load_plays()
    (data_copy / "SHA256SUMS").unlink()
    with pytest.raises(CorpusError, match="SHA256SUMS not found"):
        verify_corpus()


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split 'valid'; choose one of train, val, test"):
        load_text("valid")


def test_split_by_play_is_disjoint_and_covers_every_genre():
    plays = load_plays()
    assert len(plays) == 38 and len({p.slug for p in plays}) == 38
    by_split = {s: [p for p in plays if p.split == s] for s in ("train", "val", "test")}
    assert [len(v) for v in by_split.values()] == [26, 6, 6]
    for split in ("val", "test"):
        assert {p.genre for p in by_split[split]} == GENRES
    # the texts of the splits are exactly their plays, and no held-out speech is in training
    for split, chosen in by_split.items():
        assert load_text(split) == "\n".join(p.text for p in chosen)
    train = load_text("train")
    for p in by_split["val"] + by_split["test"]:
        speech = max(p.text.split("\n\n"), key=len)  # a play's longest speech is distinctive
        assert speech not in train, p.title


def test_text_is_in_speaker_form_without_markup():
    text = load_text("val")
    assert text.startswith("AEGEON:\n")
    for block in text.split("\n\n")[:2000]:
        if block.strip():
            assert re.match(r"^[^\n]+:\n", block), block[:80]
    assert not re.search(r"[_*\\]|\[|\]", text)


def test_prepare_turns_markdown_into_speeches():
    sys.path.insert(0, str(ROOT / "data"))
    try:
        from prepare import markdown_to_text
    finally:
        sys.path.pop(0)
    md = ("# A Play\n\n## ACT I\n\n_Enter HAMLET, and a\nGhost_\n\n**HAMLET**  \nTo be, or not  \n"
          "__\\[Aside]_ to be\\--that.\n\n_Exit_\n\nStill here.\n\n**First Witch**  \n_\\[Within]_  \nHail!\n")
    title, text = markdown_to_text(md, "a-play")
    assert title == "A Play"
    assert text == "HAMLET:\nTo be, or not\nto be--that.\n\nHAMLET:\nStill here.\n\nFirst Witch:\nHail!\n"


def test_batches_are_shifted_by_one_and_reproducible():
    data = torch.arange(100, dtype=torch.long)
    x, y = get_batch(data, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and x.dtype == torch.long
    assert torch.equal(y, x + 1)  # on 0..99 the next token is the id plus one
    x2, y2 = get_batch(data, 4, 8, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = get_batch(data, 4, 8, torch.Generator().manual_seed(1))
    assert not torch.equal(x, x3)


def test_every_window_can_be_drawn_and_none_runs_off_the_end():
    """20 tokens and windows of 15 leave 5 start positions (0..4, the last one's target is token
    19): over many draws every one of them appears, and no other."""
    data = torch.arange(20, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(40):
        x, y = get_batch(data, 5, 15, gen)
        assert torch.equal(y, x + 1) and int(y.max()) <= 19
        assert torch.equal(x - x[:, :1], torch.arange(15).expand_as(x))   # contiguous windows
        starts |= set(x[:, 0].tolist())
    assert starts == set(range(5))


def test_batch_errors_name_the_problem():
    data = torch.arange(10, dtype=torch.long)
    with pytest.raises(ValueError, match="block_size 10 needs at least 11 tokens"):
        get_batch(data, 1, 10)
    with pytest.raises(ValueError, match="batch_size 6 is larger than the 5 distinct windows"):
        get_batch(data, 6, 5)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        get_batch(data, 0, 5)
    with pytest.raises(ValueError, match="1-D int64 tensor"):
        get_batch(data.float(), 1, 5)


def test_encode_text_and_char_vocabulary_of_the_corpus():
    text = load_text("val")
    tok = CharTokenizer.train(text)
    ids = encode_text(text, tok)
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert tok.decode(ids[:200]) == text[:200]


def test_sha256sums_file_matches_the_files():
    for line in (ROOT / "data" / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((ROOT / "data" / name).read_bytes()).hexdigest() == digest


def test_speaker_headings_are_whole_lines_with_their_newline():
    from gptlib.data import speaker_heading_mask, speaker_names
    text = ("KING HENRY V:\nOnce more.\n\nFirst Merchant:\nNo: I say.\nThus I say:\n"
            "NOT A HEADING: here\n\nFALSTAFF:\nLORD")
    assert speaker_names(text) == {"KING HENRY V", "First Merchant", "FALSTAFF"}
    mask = speaker_heading_mask(text)
    marked = "".join(c for c, m in zip(text, mask.tolist()) if m)
    # a verse line ending in a colon, inside a speech, is not a heading
    assert marked == "KING HENRY V:\nFirst Merchant:\nFALSTAFF:\n"
    assert speaker_heading_mask("EDGAR:").tolist() == [True] * 6  # no newline at the end
    with pytest.raises(TypeError, match="str"):
        speaker_heading_mask(b"EDGAR:\n")


def test_every_speech_of_the_corpus_starts_with_a_heading():
    from gptlib.data import SPEAKER_HEADING, load_text
    text = load_text("val")
    names = SPEAKER_HEADING.findall(text)
    assert len(names) > 1000
    speeches = [s for s in text.split("\n\n") if s.strip()]
    starts = sum(SPEAKER_HEADING.match(s) is not None for s in speeches)
    assert len(speeches) - starts <= 2  # "Ghost" / "of Prince Edward:" kind of breaks
