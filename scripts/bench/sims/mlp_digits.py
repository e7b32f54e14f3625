"""A small trial (issue 24): a PyTorch MLP on sklearn's digits, about 0.1-0.2 s of training.

``train(config)`` is the function objective (``script: mlp_digits.py:train``) of
``bench_small_trials.py``, and the objective of its in-process Optuna script: ``lr`` (Adam's)
and ``hidden`` (the hidden layer's width) -> ``{"val_loss": ...}`` on a held-out fifth.
"""

import torch
from sklearn.datasets import load_digits


def train(config):
    torch.set_num_threads(1)  # two trials at once on two slots, as in the Optuna script
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    x_train, y_train, x_val, y_val = x[:1400], y[:1400], x[1400:], y[1400:]
    hidden = int(config["hidden"])
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config["lr"]))
    loss_fn = torch.nn.CrossEntropyLoss()
    for _epoch in range(10):
        for i in range(0, len(x_train), 128):
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[i:i + 128]), y_train[i:i + 128])
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return {"val_loss": float(loss_fn(model(x_val), y_val))}
