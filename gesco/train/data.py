"""Clean training batches for the diffusion trainer, in-process or from DataLoader workers.

A step's batch is a pure function of the step number (and the rank): step ``s`` on rank
``r`` of ``R`` takes the scenes ``(s * R + r) * B + j``, ``j < B`` (modulo the data set's
length), and any random flips come from a torch RNG seeded by the step. So a resumed run
sees the same scenes, and workers produce exactly what the training process would.

Only the *clean* part is built here (rendering, label map -> padded one-hot conditioning);
the channel corruption and the diffusion draws stay in the training process with its
seeded generator (:func:`gesco.train.diffusion.training_inputs`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from gesco.semantics.layout import full_conditioning

#: added to the step's seed for the data RNG (flips), so it never equals a step seed of the
#: trainer's generator (``seed * 1_000_003 + rank + 7919 * step``): a prime, not a multiple of 7919.
DATA_SEED_SALT = 2**31 - 1


def make_batch(dataset, indices: list[int], space) -> dict[str, torch.Tensor]:
    """Stack dataset items and build their clean conditioning.

    Returns:
        ``image`` ``(B, 3, H, W)`` float in [-1, 1], ``cond`` ``(B, C + 1, H, W)`` float32 in
        {0, 1} (present classes + the instance-edge map, padded), ``has_edges`` ``(B,)`` bool.
    """
    items = [dataset[i] for i in indices]
    images = torch.stack([it["image"] for it in items])
    conds, edges = [], []
    for it in items:
        inst = it.get("instance")
        inst_np = None if inst is None else inst.numpy()
        conds.append(full_conditioning(it["label"].numpy(), space, inst_np))
        edges.append(inst is not None)
    return {"image": images, "cond": torch.stack(conds), "has_edges": torch.tensor(edges)}


class StepBatches(Dataset):
    """Map-style data set whose item ``step`` is that step's clean batch for one rank.

    The conditioning travels as ``uint8`` (it is exactly 0 or 1): a quarter of the shared
    memory a float32 batch would take between workers and the training process;
    :func:`clean_batches` hands it back as float32.

    Args:
        dataset: scenes (items with ``image``, ``label``, optional ``instance``).
        space: the class space of the conditioning.
        batch_size: scenes per step and rank.
        seed, rank, world_size: the run's seed and this process's place in DDP.
    """

    def __init__(self, dataset, space, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.dataset, self.space, self.batch_size = dataset, space, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size

    def indices(self, step: int) -> list[int]:
        """The data set indices of step ``step`` on this rank (``batch_size`` of them)."""
        base = (step * self.world_size + self.rank) * self.batch_size
        return [(base + j) % len(self.dataset) for j in range(self.batch_size)]

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        seed = self.seed * 1_000_003 + self.rank + 7919 * step + DATA_SEED_SALT
        with torch.random.fork_rng(devices=[]):  # flips: a function of the step; the caller's RNG is untouched
            torch.manual_seed(seed)
            batch = make_batch(self.dataset, self.indices(step), self.space)
        batch["cond"] = batch["cond"].to(torch.uint8)
        return batch


def clean_batches(
    source: StepBatches, start: int, stop: int, num_workers: int = 0, pin_memory: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """The clean batches of steps ``start, ..., stop - 1``, in order.

    ``num_workers = 0`` renders each batch in this process when it is asked for; otherwise a
    :class:`~torch.utils.data.DataLoader` with that many worker processes renders whole
    batches ahead (``prefetch_factor`` 2 per worker, workers kept for the whole run). The
    items are identical either way: the step numbers are the sampler.

    Yields:
        dicts with ``image`` ``(B, 3, H, W)``, ``cond`` ``(B, C + 1, H, W)`` float32 and
        ``has_edges`` ``(B,)`` bool, on the CPU (pinned when ``pin_memory``).
    """
    steps = range(start, stop)
    if num_workers == 0:
        batches = (source[s] for s in steps)
    else:
        loader = DataLoader(
            source,
            batch_size=None,  # an item is already a whole batch
            sampler=steps,
            num_workers=num_workers,
            persistent_workers=True,
            prefetch_factor=2,
            pin_memory=pin_memory,
        )
        batches = iter(loader)
    for batch in batches:
        yield {**batch, "cond": batch["cond"].float()}
