"""mlplab: train small neural networks from scratch in NumPy and check every number."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`mlplab.train`, imported on first use so that `import mlplab` stays light."""
    if name == "train":
        from mlplab.run import train

        return train
    raise AttributeError(f"module 'mlplab' has no attribute {name!r}")
