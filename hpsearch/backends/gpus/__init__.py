"""Local GPUs: the backend, the admission policy and the probe that measures them."""
