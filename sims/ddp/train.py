"""A tiny data-parallel training run, one process per GPU (or one per node on CPUs).

Started by torchrun (``launcher: torchrun``), which sets ``RANK``, ``WORLD_SIZE`` and the
rendezvous: each rank fits a linear model to its own batches of a fixed regression task with
DistributedDataParallel (NCCL on GPUs, gloo on CPUs), which averages the gradients, so every
rank ends with the same weights. Each rank writes them to ``weights_<rank>.txt`` in
``--out_dir``; rank 0 writes ``performance_overview.txt`` (``loss``, ``world``, ``finished``).
"""

import argparse
import os

import torch
import torch.distributed as dist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    target = torch.arange(1.0, 5.0, device=device)
    model = torch.nn.Linear(4, 1).to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(model, [device] if cuda else None)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(rank)  # each rank its own batches
    for _ in range(args.steps):
        x = torch.randn(16, 4, generator=generator).to(device)
        loss = ((ddp(x).squeeze(1) - x @ target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    os.makedirs(args.out_dir, exist_ok=True)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
    with open(os.path.join(args.out_dir, f"weights_{rank}.txt"), "w") as f:
        f.write(" ".join(repr(w) for w in weights) + "\n")
    if rank == 0:
        with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
            f.write(f"loss {loss.item()}\nworld {world}\nfinished 1\n")
    dist.barrier()  # every rank done before any tears its connections down
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
