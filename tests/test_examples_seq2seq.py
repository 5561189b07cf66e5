"""Smoke tests of examples/seq2seq.py and examples/captioning.py with tiny settings (seconds):
--help, training that lowers the loss, scores in range, greedy and beam results, plots."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("babel")
pytest.importorskip("num2words")
pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def one_worker():
    """The tiny runs use one kernel worker: on a machine shared with other processes the
    workers' waiting costs more than they save at these sizes (the results are the same)."""
    import minigrad as mg
    before = mg.get_num_threads()
    mg.set_num_threads(1)
    yield
    mg.set_num_threads(before)


def example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.mark.parametrize("name", ["seq2seq", "captioning"])
def test_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        example(name).main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "--seed" in out and "--beam" in out


def _plots_ok(r):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return r.get("plot") is None
    return r.get("plot") is not None and Path(r["plot"]).stat().st_size > 0


@pytest.mark.parametrize("task", ["dates", "numbers"])
def test_seq2seq_tiny(task, tmp_path, capsys):
    r = example("seq2seq").main([
        "--task", task, "--pairs", "400", "--epochs", "4", "--lr", "0.01", "--hidden", "32",
        "--embed", "8",
        "--batch-size", "32", "--beam", "2", "--beam-pairs", "10", "--plots", "1",
        "--show", "2", "--out", str(tmp_path), "--no-progress",
        "--decode-with", "cell" if task == "numbers" else "layer",
        "--cell", "lstm" if task == "numbers" else "gru"])
    loss = r["history"]["loss"]
    assert np.mean(loss[-3:]) < 0.7 * np.mean(loss[:3])
    for key in ("greedy_exact", "beam_exact"):
        assert 0.0 <= r[key] <= 1.0
    assert len(r["examples"]) == 2 and _plots_ok(r)
    out = capsys.readouterr().out
    assert "test exact match" in out and "beam search" in out


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_captioning_tiny(lang, tmp_path, capsys):
    r = example("captioning").main([
        "--lang", lang, "--strips", "1024", "40", "40", "--epochs", "3", "--lr", "0.01",
        "--hidden", "48",
        "--features", "32", "--embed", "8", "--batch-size", "32", "--beam", "2",
        "--plots", "2", "--out", str(tmp_path), "--no-progress"])
    loss = r["history"]["loss"]
    assert np.mean(loss[-3:]) < 0.75 * np.mean(loss[:3])
    for key in ("word_accuracy", "exact_match", "beam_word_accuracy", "beam_exact_match"):
        assert 0.0 <= r[key] <= 1.0
    assert _plots_ok(r)
    assert "word accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_decoder_steps_equal_teacher_forcing(cell):
    # one decoder step at a time (the fused layer on one step, or the cell formula on the same
    # weights) gives the scores of the whole-target teacher-forced pass on the same tokens
    ex = example("seq2seq")
    common = example("_seq2seq_common")
    import minigrad as mg
    args = ex.parse_args(["--hidden", "16", "--embed", "8", "--cell", cell])
    rng = np.random.default_rng(3)
    model = ex.Translator(12, 9, args, rng)
    src = rng.integers(3, 12, size=(4, 6))
    lengths = np.array([6, 3, 5, 1])
    tokens = rng.integers(3, 9, size=(4, 5))
    tokens[:, 0] = common.BOS
    with mg.no_grad():
        h0, keys, mask = model.encode(src, lengths)
        forced, forced_w = model.decoder(tokens, h0, keys, mask)[:2]
        for use_cell in (False, True):
            step = model.decoder.step_fn(cell=use_cell)
            state = model.decoder.start_state(h0, keys, mask)
            for t in range(tokens.shape[1]):
                scores, state = step(tokens[:, t], state)
                np.testing.assert_allclose(scores.data, forced.data[:, t], rtol=1e-4,
                                           atol=1e-5)
    assert np.all(forced_w.data[~np.broadcast_to(mask[:, None, :], forced_w.shape)] == 0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_translator_same_on_primitive_graph_and_fused_layers(cell):
    # the whole seq2seq model (encoder with lengths, teacher-forced attention decoder): loss
    # and every parameter gradient agree between the fused layers and the primitive graph
    ex = example("seq2seq")
    import minigrad.nn.functional as F
    from minigrad.nn.rnn import use_fused
    args = ex.parse_args(["--hidden", "16", "--embed", "8", "--cell", cell,
                          "--attention", "additive"])
    rng = np.random.default_rng(4)
    model = ex.Translator(12, 9, args, rng)
    src = rng.integers(3, 12, size=(5, 7))
    lengths = np.array([7, 2, 5, 1, 6])
    tgt = rng.integers(3, 9, size=(5, 6))
    results = []
    for fused in (True, False):
        with use_fused(fused):
            model.zero_grad()
            scores, _ = model(src, lengths, tgt[:, :-1])
            loss = F.cross_entropy(scores, tgt[:, 1:])
            loss.backward()
            results.append((loss.item(), {n: p.grad.copy() for n, p in
                                          model.named_parameters()}))
    (l1, g1), (l2, g2) = results
    assert abs(l1 - l2) < 1e-5
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], rtol=1e-3, atol=1e-5, err_msg=name)
