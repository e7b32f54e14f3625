"""The scheduler-agnostic cluster machinery: arrays, sweeps, packing, requeue, reattach."""
