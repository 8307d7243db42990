"""Experiments built on the training loop: executors, sweeps, tuning, reproduction, reports, randomization tests."""
