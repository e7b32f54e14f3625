"""Your first search's script: an ordinary argparse training script (standard library only)."""

import argparse
import math
import os
import random
import time

from hpsearch import report

parser = argparse.ArgumentParser()
parser.add_argument("--out_dir", required=True)  # hpsearch passes each run's own folder
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--width", type=int, default=64)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--random_seed", type=int, default=0)
args = parser.parse_args()
noise = random.Random(args.random_seed)

for epoch in range(1, args.epochs + 1):
    time.sleep(0.01)  # "train" one epoch
    val_loss = math.log10(args.lr / 0.03) ** 2 + 8 / args.width + 1 / epoch
    val_loss += noise.gauss(0, 0.01)
    report(step=epoch, val_loss=val_loss)  # a point of the learning curve

os.makedirs(args.out_dir, exist_ok=True)
with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
    f.write(f"val_loss {val_loss}\nfinished 1\n")
