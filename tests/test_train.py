"""The training helper: fit, early stopping, checkpoints, exact resume, plots."""
import os
import sys

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import Tensor, io, optim
from minigrad.nn.layers import Dropout, Embedding, Linear, Sequential
from minigrad.train import evaluate, fit, plot_history

VOCAB = 10


def _model(dtype=np.float64):
    return Sequential(Embedding(VOCAB, 8, dtype=dtype), Dropout(0.2), Linear(8, VOCAB, dtype=dtype))


def _loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(Tensor(x)), y)


def _data(seed, n_batches=6, size=16):
    """Next-token task: y = (x + 1) mod VOCAB."""
    rng = np.random.default_rng(seed)
    xs = [rng.integers(0, VOCAB, size=size) for _ in range(n_batches)]
    return [(x, (x + 1) % VOCAB) for x in xs]


def test_fit_lowers_the_loss_and_records_history(capsys):
    mg.manual_seed(0)
    model = _model()
    history = fit(model, _data(0), _loss, optim.Adam(model.parameters(), lr=0.05), epochs=5,
                  val_batches=_data(1), clip_grad_norm=5.0, progress=False)
    assert history["epoch"] == [1, 2, 3, 4, 5]
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert all(v is not None and v > 0 for v in history["grad_norm"])
    assert all(r > 0 for r in history["items_per_s"])
    assert "epoch 5/5" in capsys.readouterr().out
    assert model.training
    assert evaluate(model, _data(1), _loss) == pytest.approx(history["val_loss"][-1])


def test_on_epoch_end_metrics_join_history_and_log():
    mg.manual_seed(0)
    model = _model()
    seen, lines = [], []

    def on_epoch_end(epoch, history):
        seen.append((epoch, history["val_loss"][-1]))   # this epoch's validation is done
        return {"val_metric": round(1.0 / epoch, 4)}

    history = fit(model, _data(0), _loss, optim.Adam(model.parameters(), lr=0.05), epochs=3,
                  val_batches=_data(1), progress=False, log=lines.append,
                  on_epoch_end=on_epoch_end)
    assert [e for e, _ in seen] == [1, 2, 3]
    assert [v for _, v in seen] == history["val_loss"]
    assert history["val_metric"] == [1.0, 0.5, 0.3333]
    assert lines[1].startswith("epoch 2/3") and "val_metric 0.5000" in lines[1]


def test_scheduler_is_stepped_each_epoch():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    history = fit(model, _data(0, 2), _loss, opt, epochs=3, scheduler=sched, progress=False,
                  log=None)
    np.testing.assert_allclose(history["lr"], [0.1, 0.05, 0.025])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0125)


def test_early_stopping_triggers(capsys):
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.0)  # nothing improves after the first epoch
    history = fit(model, _data(0, 2), _loss, opt, epochs=20, val_batches=_data(1, 2),
                  patience=2, progress=False)
    assert len(history["epoch"]) == 3
    assert "early stopping" in capsys.readouterr().out


def test_checkpoint_files_appear_each_epoch(tmp_path):
    path = tmp_path / "run" / "lm.npz"
    path.parent.mkdir()
    model = _model()
    fit(model, _data(0, 2), _loss, optim.Adam(model.parameters(), lr=0.01), epochs=2,
        val_batches=_data(1, 2), checkpoint=path, progress=False, log=None,
        meta={"class": "Sequential"})
    assert sorted(os.listdir(path.parent)) == ["lm.best.npz", "lm.npz"]
    state, meta = io.load(path, return_meta=True)
    assert meta == {"class": "Sequential"}
    assert state["position"]["epoch"] == 2
    assert set(state) >= {"model", "optimizer", "rng", "history"}
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(state["model"][name], p.data)


def _run(tmp_path, epochs, resume, seed_model=0):
    """Shuffled batches drawn from a generator that persists across epochs, plus dropout."""
    mg.manual_seed(seed_model)
    data_rng = np.random.default_rng(42)
    pool = _data(3, n_batches=5)

    def batches(epoch):
        order = data_rng.permutation(len(pool))
        return [pool[i] for i in order]

    model = _model()
    opt = optim.Adam(model.parameters(), lr=0.02, weight_decay=0.01)
    sched = optim.CosineAnnealingLR(opt, T_max=5)
    history = fit(model, batches, _loss, opt, epochs, val_batches=_data(4, 2), scheduler=sched,
                  clip_grad_norm=1.0, checkpoint=tmp_path / "ckpt.npz", resume=resume,
                  rngs={"data": data_rng}, progress=False, log=None)
    return model, history


def test_exact_resume_equals_training_straight_through(tmp_path):
    straight_dir, resumed_dir = tmp_path / "a", tmp_path / "b"
    straight_dir.mkdir()
    resumed_dir.mkdir()
    full, full_hist = _run(straight_dir, epochs=5, resume=False)
    _run(resumed_dir, epochs=2, resume=False)           # N = 2 epochs, then "the process dies"
    mg.manual_seed(999)                               # a fresh process: other RNG state...
    resumed, hist = _run(resumed_dir, epochs=5, resume=True, seed_model=123)  # ...M = 3 more
    for (name, p), (_, q) in zip(full.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert hist["train_loss"] == full_hist["train_loss"]
    assert hist["val_loss"] == full_hist["val_loss"]
    assert hist["epoch"] == [1, 2, 3, 4, 5]
    # and without restoring the state, the result differs (the test can fail)
    other, _ = _run(tmp_path, epochs=5, resume=False, seed_model=123)
    assert not np.array_equal(other[2].weight.data, full[2].weight.data)


class _TinyLSTM(Sequential):
    """Embedding -> LSTM -> Linear over (batch, time) token ids."""

    def __init__(self, rng):
        from minigrad.nn.rnn import LSTM
        super().__init__(Embedding(VOCAB, 6, dtype=np.float64),
                         LSTM(6, 8, num_layers=2, dropout=0.3, batch_first=True,
                              dtype=np.float64, rng=rng),
                         Linear(8, VOCAB, dtype=np.float64))

    def forward(self, x):
        out, _ = self[1](self[0](x))
        return self[2](out)


def test_exact_resume_with_an_lstm(tmp_path):
    pytest.importorskip("minigrad.nn.rnn")
    rng = np.random.default_rng(0)
    xs = [rng.integers(0, VOCAB, size=(3, 5)) for _ in range(3)]
    data = [(x, (x + 1) % VOCAB) for x in xs]

    def run(folder, epochs, resume):
        mg.manual_seed(1)
        lstm_rng = np.random.default_rng(2)  # the LSTM's init and inter-layer dropout masks
        model = _TinyLSTM(lstm_rng)
        fit(model, data, _loss, optim.RMSprop(model.parameters(), lr=0.01, momentum=0.5),
            epochs, checkpoint=folder / "c.npz", resume=resume, rngs={"lstm": lstm_rng},
            progress=False, log=None)
        return model

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full = run(tmp_path / "a", 3, False)
    run(tmp_path / "b", 1, False)
    mg.manual_seed(5)
    resumed = run(tmp_path / "b", 3, True)
    for (name, p), (_, q) in zip(full.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_resume_from_missing_path_is_an_error(tmp_path):
    model = _model()
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        fit(model, _data(0, 1), _loss, optim.SGD(model.parameters(), lr=0.1), epochs=1,
            resume=tmp_path / "nope.npz", progress=False, log=None)


def test_plain_text_progress_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    model = _model()
    fit(model, _data(0, 2), _loss, optim.SGD(model.parameters(), lr=0.1), epochs=1,
        progress=True, log=None, unit="tokens")
    err = capsys.readouterr().err
    assert "loss" in err and "tokens/s" in err


def test_non_finite_loss_stops_with_a_clear_error():
    model = _model()
    model[2].weight.data[:] = np.nan
    with pytest.raises(FloatingPointError, match="epoch 1, batch 1"):
        fit(model, _data(0, 2), _loss, optim.SGD(model.parameters(), lr=0.1), epochs=1,
            progress=False, log=None)


def test_plot_history_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    history = {"epoch": [1, 2, 3], "train_loss": [2.0, 1.5, 1.2], "val_loss": [2.1, 1.7, 1.6]}
    out = plot_history(history, tmp_path / "loss.png")
    assert out == str(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_history_without_matplotlib_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert plot_history({"train_loss": [1.0]}, tmp_path / "x.png") is None
    assert "matplotlib is not installed" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
