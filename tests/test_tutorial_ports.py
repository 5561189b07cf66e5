"""Three well-known PyTorch tutorial programs, ported to minigrad line by line.

Each program below is written ONCE, in PyTorch's style (``dim=``, ``ModuleList``,
``masked_fill``, ``gather``, ``argmax``, ``unsqueeze``, ``LayerNorm``, ...), as a function of the
library it runs on: ``program(torch, nn, F)``. The test runs it with PyTorch and with minigrad
(``program(mg, mg.nn, mg.nn.functional)``), copies the torch model's weights into the minigrad
model through ``load_state_dict``, and checks that outputs, loss and every parameter's gradient
agree in float64.

1. A character-level RNN name classifier (the "Classifying Names with a Character-Level RNN"
   tutorial) on generated names: one-hot letters, a stack of RNN cells in a ModuleList, the
   state at each name's last letter picked with ``gather``, LogSoftmax + NLLLoss, argmax.
2. One step of a Luong-attention decoder (the chatbot tutorial's ``LuongAttnDecoderRNN`` with
   "general" scoring): a GRU step, scores ``sum(hidden * W enc, dim=2)`` with padded source
   positions masked by ``masked_fill``, softmax over the source, ``bmm`` for the context,
   ``cat``, and the tutorial's masked NLL loss built from ``gather``.
3. A layer-normalised LSTM cell (PyTorch's ``custom_lstms.py`` ``LayerNormLSTMCell``) unrolled
   over a sequence, two layers in a ModuleList, gates by ``chunk``, LayerNorm on the input and
   hidden projections and on the cell.

Where minigrad lacks a PyTorch spelling the tutorials use, the program uses an equivalent one
that both libraries have (the same text still runs on both): ``x.t()`` -> ``x.transpose(0, 1)``
/ ``.T``; ``torch.mm`` -> ``torch.matmul``; ``a.bmm(b)`` -> ``torch.bmm(a, b)``; ``~mask`` -> a
padding mask given directly (``mask == False`` where the complement is needed).
"""
from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(2024)


# ---- 1. char-RNN name classifier ------------------------------------------------------------

def char_rnn_program(torch, nn, F):
    class CharRNN(nn.Module):
        def __init__(self, n_letters, hidden_size, n_categories, num_layers=2):
            super().__init__()
            self.n_letters, self.hidden_size = n_letters, hidden_size
            self.cells = nn.ModuleList(
                [nn.RNNCell(n_letters if i == 0 else hidden_size, hidden_size)
                 for i in range(num_layers)])
            self.h2o = nn.Linear(hidden_size, n_categories)
            self.softmax = nn.LogSoftmax(dim=1)

        def forward(self, names, lengths):
            batch, steps = names.shape
            x = F.one_hot(names, self.n_letters).double()           # (B, T, letters)
            hidden = [torch.zeros(batch, self.hidden_size).double() for _ in self.cells]
            outputs = []
            for t in range(steps):
                inp = x[:, t]
                for i, cell in enumerate(self.cells):
                    hidden[i] = cell(inp, hidden[i])
                    inp = hidden[i]
                outputs.append(inp.unsqueeze(1))
            out = torch.cat(outputs, dim=1)                         # (B, T, H)
            last = (lengths - 1).view(batch, 1, 1).expand(batch, 1, self.hidden_size)
            final = out.gather(1, last).squeeze(1)                  # state at each name's end
            return self.softmax(self.h2o(final))

    def run(model, names, lengths, categories):
        output = model(names, lengths)
        loss = nn.NLLLoss()(output, categories)
        guess = output.argmax(dim=1)
        loss.backward()
        return output, loss, guess

    return CharRNN, run


def generated_names(n_names=12, n_letters=10, n_categories=3, max_len=7):
    """Each category prefers its own letters; names are padded with letter 0 after their end."""
    prefs = RNG.dirichlet(np.ones(n_letters) * 0.5, size=n_categories)
    categories = RNG.integers(0, n_categories, n_names)
    lengths = RNG.integers(2, max_len + 1, n_names)
    names = np.zeros((n_names, max_len), dtype=np.int64)
    for i, (c, n) in enumerate(zip(categories, lengths)):
        names[i, :n] = RNG.choice(n_letters, size=n, p=prefs[c])
    return names, lengths, categories


# ---- 2. Luong-attention decoder step -------------------------------------------------------

def luong_program(torch, nn, F):
    class Attn(nn.Module):
        """Luong "general" score: score(h_t, h_s) = h_t . (W h_s)."""

        def __init__(self, hidden_size):
            super().__init__()
            self.attn = nn.Linear(hidden_size, hidden_size)

        def forward(self, hidden, encoder_outputs, src_pad):
            energy = self.attn(encoder_outputs)                     # (S, B, H)
            attn_energies = torch.sum(hidden * energy, dim=2).transpose(0, 1)  # (B, S)
            attn_energies = attn_energies.masked_fill(src_pad, -1e10)
            return F.softmax(attn_energies, dim=1).unsqueeze(1)     # (B, 1, S)

    class LuongAttnDecoderRNN(nn.Module):
        def __init__(self, hidden_size, output_size, n_layers=1):
            super().__init__()
            self.embedding = nn.Embedding(output_size, hidden_size)
            self.gru = nn.GRU(hidden_size, hidden_size, n_layers)
            self.concat = nn.Linear(hidden_size * 2, hidden_size)
            self.out = nn.Linear(hidden_size, output_size)
            self.attn = Attn(hidden_size)

        def forward(self, input_step, last_hidden, encoder_outputs, src_pad):
            embedded = self.embedding(input_step)                   # (1, B, H)
            rnn_output, hidden = self.gru(embedded, last_hidden)
            attn_weights = self.attn(rnn_output, encoder_outputs, src_pad)
            context = torch.bmm(attn_weights, encoder_outputs.transpose(0, 1))  # (B, 1, H)
            rnn_output = rnn_output.squeeze(0)
            context = context.squeeze(1)
            concat_input = torch.cat((rnn_output, context), 1)
            concat_output = torch.tanh(self.concat(concat_input))
            output = F.softmax(self.out(concat_output), dim=1)
            return output, hidden, attn_weights

    def mask_nll_loss(inp, target, pad):
        """The tutorial's maskNLLLoss: -log p(target), averaged over the rows not padded."""
        cross_entropy = -torch.log(torch.gather(inp, 1, target.view(-1, 1)).squeeze(1))
        cross_entropy = cross_entropy.masked_fill(pad, 0.0)
        return cross_entropy.sum() / (pad == False).sum()  # noqa: E712 (elementwise)

    def run(decoder, input_step, last_hidden, encoder_outputs, src_pad, target, tgt_pad):
        output, hidden, attn_weights = decoder(input_step, last_hidden, encoder_outputs,
                                               src_pad)
        loss = mask_nll_loss(output, target, tgt_pad)
        loss.backward()
        return output, hidden, attn_weights, loss

    return LuongAttnDecoderRNN, run


# ---- 3. layer-normalised LSTM cell ----------------------------------------------------------

def layer_norm_lstm_program(torch, nn, F):
    class LayerNormLSTMCell(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.input_size, self.hidden_size = input_size, hidden_size
            self.weight_ih = nn.Parameter(torch.randn(4 * hidden_size, input_size))
            self.weight_hh = nn.Parameter(torch.randn(4 * hidden_size, hidden_size))
            self.layernorm_i = nn.LayerNorm(4 * hidden_size)
            self.layernorm_h = nn.LayerNorm(4 * hidden_size)
            self.layernorm_c = nn.LayerNorm(hidden_size)

        def forward(self, input, state):
            hx, cx = state
            igates = self.layernorm_i(torch.matmul(input, self.weight_ih.T))
            hgates = self.layernorm_h(torch.matmul(hx, self.weight_hh.T))
            gates = igates + hgates
            ingate, forgetgate, cellgate, outgate = gates.chunk(4, 1)
            ingate = torch.sigmoid(ingate)
            forgetgate = torch.sigmoid(forgetgate)
            cellgate = torch.tanh(cellgate)
            outgate = torch.sigmoid(outgate)
            cy = self.layernorm_c((forgetgate * cx) + (ingate * cellgate))
            hy = outgate * torch.tanh(cy)
            return hy, (hy, cy)

    class StackedLayerNormLSTM(nn.Module):
        def __init__(self, input_size, hidden_size, num_layers, n_out):
            super().__init__()
            self.layers = nn.ModuleList(
                [LayerNormLSTMCell(input_size if i == 0 else hidden_size, hidden_size)
                 for i in range(num_layers)])
            self.head = nn.Linear(hidden_size, n_out)
            self.hidden_size = hidden_size

        def forward(self, input):                                   # (T, B, I)
            steps, batch = input.shape[0], input.shape[1]
            states = [(torch.zeros(batch, self.hidden_size).double(),
                       torch.zeros(batch, self.hidden_size).double()) for _ in self.layers]
            outputs = []
            for t in range(steps):
                out = input[t]
                for i, cell in enumerate(self.layers):
                    out, states[i] = cell(out, states[i])
                outputs.append(out)
            return self.head(torch.stack(outputs, dim=0)), states   # (T, B, n_out)

    def run(model, inputs, targets):
        logits, states = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        return logits, states, loss

    return StackedLayerNormLSTM, run


# ---- the comparisons ------------------------------------------------------------------------

MG = (mg, mg.nn, mg.nn.functional)
TORCH = (torch, torch.nn, torch.nn.functional)


def copy_weights(torch_model, mg_model):
    torch_model.double()
    mg_model.double()
    mg_model.load_state_dict({k: v.detach().numpy() for k, v in torch_model.state_dict().items()})


def assert_same(mg_value, torch_value, rtol=1e-9, atol=1e-11, what=""):
    np.testing.assert_allclose(np.asarray(mg_value.data), torch_value.detach().numpy(),
                               rtol=rtol, atol=atol, err_msg=what)


def assert_same_grads(mg_model, torch_model):
    mg_params = dict(mg_model.named_parameters())
    torch_params = dict(torch_model.named_parameters())
    assert list(mg_params) == list(torch_params)
    for name, p in torch_params.items():
        assert mg_params[name].grad is not None, name
        np.testing.assert_allclose(mg_params[name].grad, p.grad.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)


def test_char_rnn_name_classifier_matches_torch():
    names, lengths, categories = generated_names()
    TorchModel, torch_run = char_rnn_program(*TORCH)
    MgModel, mg_run = char_rnn_program(*MG)
    torch.manual_seed(0)
    t_model, m_model = TorchModel(10, 16, 3), MgModel(10, 16, 3)
    copy_weights(t_model, m_model)
    t_out, t_loss, t_guess = torch_run(t_model, torch.tensor(names), torch.tensor(lengths),
                                       torch.tensor(categories))
    m_out, m_loss, m_guess = mg_run(m_model, mg.tensor(names), mg.tensor(lengths),
                                    mg.tensor(categories))
    assert_same(m_out, t_out, what="log-probabilities")
    assert_same(m_loss, t_loss, what="loss")
    np.testing.assert_array_equal(np.asarray(m_guess.data), t_guess.numpy())
    assert m_guess.dtype == np.int64 and not m_guess.requires_grad
    assert_same_grads(m_model, t_model)


def test_luong_attention_decoder_step_matches_torch():
    hidden, vocab, src_len, batch = 8, 11, 6, 4
    TorchDecoder, torch_run = luong_program(*TORCH)
    MgDecoder, mg_run = luong_program(*MG)
    torch.manual_seed(1)
    t_dec, m_dec = TorchDecoder(hidden, vocab), MgDecoder(hidden, vocab)
    copy_weights(t_dec, m_dec)
    t_dec.eval()
    m_dec.eval()
    input_step = RNG.integers(0, vocab, (1, batch))
    last_hidden = RNG.standard_normal((1, batch, hidden))
    encoder_outputs = RNG.standard_normal((src_len, batch, hidden))
    src_lengths = np.array([6, 3, 5, 1])
    src_pad = np.arange(src_len)[None, :] >= src_lengths[:, None]   # (B, S): True = padding
    target = RNG.integers(0, vocab, batch)
    tgt_pad = np.array([False, False, True, False])
    t_enc = torch.tensor(encoder_outputs, requires_grad=True)
    m_enc = mg.tensor(encoder_outputs, requires_grad=True)
    t_res = torch_run(t_dec, torch.tensor(input_step), torch.tensor(last_hidden), t_enc,
                      torch.tensor(src_pad), torch.tensor(target), torch.tensor(tgt_pad))
    m_res = mg_run(m_dec, mg.tensor(input_step), mg.tensor(last_hidden), m_enc,
                   mg.tensor(src_pad), mg.tensor(target), mg.tensor(tgt_pad))
    for what, m, t in zip(["output", "hidden", "attention", "loss"], m_res, t_res):
        assert_same(m, t, what=what)
    # padded source positions get no attention
    assert np.all(m_res[2].data[:, 0][src_pad] < 1e-300)
    np.testing.assert_allclose(m_enc.grad, t_enc.grad.numpy(), rtol=1e-8, atol=1e-10)
    assert_same_grads(m_dec, t_dec)


def test_layer_norm_lstm_cell_matches_torch():
    steps, batch, n_in, hidden, n_out = 5, 3, 4, 6, 5
    TorchModel, torch_run = layer_norm_lstm_program(*TORCH)
    MgModel, mg_run = layer_norm_lstm_program(*MG)
    torch.manual_seed(2)
    t_model, m_model = TorchModel(n_in, hidden, 2, n_out), MgModel(n_in, hidden, 2, n_out)
    # LayerNorm's weights start at one and zero: make them differ so their gradients matter
    with torch.no_grad():
        for name, p in t_model.named_parameters():
            if "layernorm" in name:
                p.add_(0.3 * torch.randn(p.shape))
    copy_weights(t_model, m_model)
    inputs = RNG.standard_normal((steps, batch, n_in))
    targets = RNG.integers(0, n_out, (steps, batch))
    t_logits, t_states, t_loss = torch_run(t_model, torch.tensor(inputs), torch.tensor(targets))
    m_logits, m_states, m_loss = mg_run(m_model, mg.tensor(inputs), mg.tensor(targets))
    assert_same(m_logits, t_logits, what="logits")
    assert_same(m_loss, t_loss, what="loss")
    for (mh, mc), (th, tc) in zip(m_states, t_states):
        assert_same(mh, th, what="h")
        assert_same(mc, tc, what="c")
    assert_same_grads(m_model, t_model)


def test_char_rnn_training_loop_follows_torch_step_by_step():
    """The tutorial's training loop (zero_grad, forward, NLLLoss, backward, step) with Adam for
    30 steps in both libraries: the loss curves agree, and the classifier learns the generated
    categories."""
    names, lengths, categories = generated_names(n_names=24)
    TorchModel, _ = char_rnn_program(*TORCH)
    MgModel, _ = char_rnn_program(*MG)
    torch.manual_seed(3)
    t_model, m_model = TorchModel(10, 16, 3), MgModel(10, 16, 3)
    copy_weights(t_model, m_model)
    t_opt = torch.optim.Adam(t_model.parameters(), lr=0.02)
    m_opt = mg.optim.Adam(m_model.parameters(), lr=0.02)
    t_data = (torch.tensor(names), torch.tensor(lengths), torch.tensor(categories))
    m_data = (mg.tensor(names), mg.tensor(lengths), mg.tensor(categories))
    t_losses, m_losses = [], []
    for model, opt, (x, n, y), losses, nn in ((t_model, t_opt, t_data, t_losses, torch.nn),
                                              (m_model, m_opt, m_data, m_losses, mg.nn)):
        criterion = nn.NLLLoss()
        for _ in range(30):
            opt.zero_grad()
            loss = criterion(model(x, n), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    np.testing.assert_allclose(m_losses, t_losses, rtol=1e-7)
    accuracy = (m_model(*m_data[:2]).argmax(dim=1) == m_data[2]).float().mean().item()
    assert m_losses[-1] < 0.5 * m_losses[0] and accuracy > 0.8
