"""Datasets and alphabets. Each dataset is built once, offline, and cached under :func:`cache.cache_dir`."""
