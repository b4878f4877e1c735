"""A PolicyGenerator with random weights: the wiring tests and benchmarks of the generator node
need a generator folder, not a trained one."""
from __future__ import annotations


def untrained_generator(spec: str, preset: str = "tiny", folder=None):
    """PolicyGenerator with random weights (wiring tests, benchmarks), built on one torch thread
    (on a small shared CPU more threads only spin), saved to `folder` when given."""
    import torch

    from ..pipeline import PolicyGenerator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = PolicyGenerator.untrained(spec, preset=preset, device="cpu")
    finally:
        torch.set_num_threads(threads)
    if folder is not None:
        gen.save_pretrained(folder)
    return gen
