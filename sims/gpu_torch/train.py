"""A small PyTorch training run on one GPU that holds a chosen amount of GPU memory.

Fits a two-layer MLP to a fixed random regression task for ``--train_steps`` steps, after
allocating ``--gpu_mib`` MiB of extra tensors (a stand-in for a bigger model), and writes
``performance_overview.txt`` (``loss``, ``peak_mib``, ``finished``) into ``--out_dir``.
Without torch, or without a CUDA GPU, it prints one line saying so and exits 2.
"""

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--gpu_mib", type=int, default=512, help="extra GPU memory to hold")
    parser.add_argument("--train_steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("gpu_torch: torch is not installed (pip install torch); skipping", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("gpu_torch: no CUDA GPU visible to torch; skipping", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    torch.manual_seed(args.seed)
    ballast = torch.empty(args.gpu_mib * (1 << 20) // 4, dtype=torch.float32, device=device)
    ballast.fill_(1.0)
    x = torch.randn(4096, 64, device=device)
    y = torch.sin(x.sum(dim=1, keepdim=True))
    model = torch.nn.Sequential(torch.nn.Linear(64, args.hidden), torch.nn.ReLU(),
                                torch.nn.Linear(args.hidden, 1)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss = torch.tensor(0.0)
    for _ in range(args.train_steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() // (1 << 20)
    del ballast
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
        f.write(f"loss {loss.item()!r}\npeak_mib {peak}\nfinished 1\n")
    print(f"loss={loss.item():.4f} peak={peak} MiB on {torch.cuda.get_device_name(0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
