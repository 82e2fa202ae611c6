"""Datasets: on-disk formats, the registry, the resolver, decoding, the cache, CIFAR-10H and the loader."""
