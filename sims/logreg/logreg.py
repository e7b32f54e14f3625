"""Train a logistic-regression classifier with mini-batch SGD on a synthetic data set (numpy).

A realistic small sim for hpsearch: it reads hyperparameters from flags, trains for a few
seconds at most on the CPU, and writes a hypnettorch-style summary file into --out_dir::

    acc_test 0.9125
    loss_test 0.2543
    acc_train 0.9231
    finished 1
"""

import argparse
import os

import numpy as np


def make_data(seed: int = 0, n: int = 4000, dim: int = 20) -> tuple[np.ndarray, ...]:
    """Two overlapping Gaussian classes; fixed seed, so every run sees the same data."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=dim)
    x = rng.normal(size=(n, dim))
    logits = x @ w_true + 0.5 * rng.normal(size=n)
    y = (logits > 0).astype(np.float64)
    split = int(0.8 * n)
    return x[:split], y[:split], x[split:], y[split:]


def loss_and_acc(w: np.ndarray, b: float, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    eps = 1e-12
    loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    return float(loss), float(np.mean((p > 0.5) == y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--l2", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    x_train, y_train, x_test, y_test = make_data()
    rng = np.random.default_rng(args.seed)
    w = np.zeros(x_train.shape[1])
    b = 0.0
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), args.batch_size):
            idx = order[start:start + args.batch_size]
            p = 1.0 / (1.0 + np.exp(-(x_train[idx] @ w + b)))
            grad = p - y_train[idx]
            w -= args.lr * (x_train[idx].T @ grad / len(idx) + args.l2 * w)
            b -= args.lr * float(np.mean(grad))
        train_loss, train_acc = loss_and_acc(w, b, x_train, y_train)
        print(f"epoch {epoch + 1}: train loss {train_loss:.4f} acc {train_acc:.4f}")

    test_loss, test_acc = loss_and_acc(w, b, x_test, y_test)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
        f.write(f"acc_test {test_acc}\n")
        f.write(f"loss_test {test_loss}\n")
        f.write(f"acc_train {train_acc}\n")
        f.write("finished 1\n")


if __name__ == "__main__":
    main()
