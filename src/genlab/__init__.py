"""genlab: learn a distribution, sample from it, across modalities."""

__version__ = "0.1.0"
