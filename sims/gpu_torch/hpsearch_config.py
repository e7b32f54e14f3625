"""Grid module for the PyTorch GPU example (see train.py).

Run it on a machine with an NVIDIA GPU and torch installed::

    python -m hpsearch --grid_module=sims.gpu_torch.hpsearch_config \
        --run_cwd=sims/gpu_torch --out_dir=/tmp/gpu_torch --max_num_jobs_per_gpu=4 \
        --allowed_memory=0.9 --allowed_load=1

Each run allocates ``--gpu_mib`` MiB of tensors, so the admission's memory rule shows.
"""

grid = {
    "lr": [0.01, 0.05],
    "hidden": [256, 1024],
    "gpu_mib": [512, 2048],
    "train_steps": [300],
}
conditions = []

_SCRIPT_NAME = "train.py"
_SUMMARY_FILENAME = "performance_overview.txt"
_SUMMARY_KEYWORDS = ["loss", "peak_mib", "finished"]
_OUT_ARG = "out_dir"
_SUMMARY_PARSER_HANDLE = None
_PERFORMANCE_KEY = "loss"
_PERFORMANCE_SORT_ASC = True
_PERFORMANCE_EVAL_HANDLE = None
_ARGPARSE_HANDLE = None
