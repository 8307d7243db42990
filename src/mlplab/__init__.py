"""mlplab: train small neural networks from scratch in NumPy and check every number."""

__version__ = "0.1.0"
