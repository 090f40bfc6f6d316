"""The receiver's worker with jobs of mixed settings queued together: each job's image is the
image the same job gives when it is the only one queued.

The worker claims batches by ``batch_key`` (:func:`receiver.ingest.batch_key`) and samples a
batch in one ``generate`` call; this checks the whole path (store -> claim -> FDS -> batched
sampling -> PNG) keeps every job's own sampler, steps, guidance scale, seed, FDS switch and
channel noise. (The receiver has no ``eta`` setting: its DDIM runs at ``eta = 0``.)
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from frame_helpers import received_frame, store_job
from svc_helpers import TINY_RESOLUTION

from gesco.diffusion.checkpoint import ModelCard
from gesco.diffusion.gaussian import DiffusionConfig
from gesco.diffusion.pipeline import SamplingSettings, SemanticGenerator
from gesco.diffusion.unet import SpadeUNet, UNetConfig
from gesco.link import receiver_maps
from receiver.ingest import Ingest
from receiver.store import IMAGE_FILE, JobStatus
from receiver.stores import JobStore
from receiver.worker import Worker

#: (job id, transmit settings); pairs with one batch key but other seeds / FDS / PSNR share a batch
JOBS = [
    ("a", dict(sampler="dpmpp-2m", steps=2, guidance_scale=2.0, seed=1, fds=True, psnr_db=10.0)),
    ("b", dict(sampler="ddim", steps=3, guidance_scale=1.5, seed=2, fds=False, psnr_db=100.0)),
    ("c", dict(sampler="dpmpp-2m", steps=2, guidance_scale=2.0, seed=3, fds=False, psnr_db=5.0)),
    ("d", dict(sampler="respaced", steps=4, guidance_scale=3.0, seed=4, fds=True, psnr_db=20.0)),
    ("e", dict(sampler="dpmpp-2m-sde", steps=3, guidance_scale=2.0, seed=5, fds=True, psnr_db=10.0)),
    ("f", dict(sampler="ddim", steps=3, guidance_scale=1.5, seed=6, fds=True, psnr_db=1.0)),
    ("g", dict(sampler="dpmpp-2m-sde-ode-mean", steps=4, guidance_scale=1.0, seed=7, fds=True, psnr_db=15.0)),
]


@pytest.fixture()
def generator() -> SemanticGenerator:
    """A tiny random U-Net whose output depends on its inputs (every weight perturbed: the
    zero-initialised output convolution of a fresh model would predict eps = 0 whatever the
    maps and guidance), at the service tests' resolution."""
    config = UNetConfig(label_channels=36, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(),
                        head_channels=8, spade_hidden=8, num_groups=8)
    torch.manual_seed(0)
    model = SpadeUNet(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    card = ModelCard(unet=config, diffusion=DiffusionConfig(), class_space="cityscapes", resolution=TINY_RESOLUTION)
    return SemanticGenerator(model, card, "cpu")


@pytest.fixture()
def one_thread():
    """Batch-size-independent float rounding (see tests/diffusion/test_pipeline.py)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run_jobs(store: JobStore, generator: SemanticGenerator, jobs: list[tuple[str, dict]]) -> dict[str, np.ndarray]:
    """Queue ``jobs`` together, let the worker drain the queue; return each job's image (H, W, 3) uint8."""
    ingest = Ingest(store, generator)
    for name, settings in jobs:
        store_job(store, ingest, received_frame(name, **settings))
    worker = Worker(store, generator, max_batch=4)
    while batch := store.claim_batch(4):
        worker.process(batch)
    images = {}
    for name, _ in jobs:
        job = store.get(name)
        assert job.status == JobStatus.DONE, (name, job.reason)
        images[name] = cv2.imdecode(np.frombuffer(store.result_path(name, IMAGE_FILE).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return images


def test_mixed_jobs_queued_together_give_the_images_they_give_alone(tmp_path, generator, one_thread):
    together = JobStore(tmp_path / "together", fsync=False)
    mixed = run_jobs(together, generator, JOBS)
    sizes = {name: together.get(name).timings["batch_size"] for name, _ in JOBS}
    together.close()
    # the compatible pairs really were sampled in one call, the rest alone
    assert sizes == {"a": 2, "b": 2, "c": 2, "d": 1, "e": 1, "f": 2, "g": 1}
    for name, settings in JOBS:
        store = JobStore(tmp_path / f"alone-{name}", fsync=False)
        alone = run_jobs(store, generator, [(name, settings)])[name]
        store.close()
        # batched vs single convolutions differ by ~1e-5: at most one grey level after rounding
        diff = np.abs(mixed[name].astype(int) - alone.astype(int))
        assert diff.max() <= 1, (name, int(diff.max()))
        # and it is the image of the job's own settings: its frame's maps (FDS as asked) sampled
        # directly by the pipeline with its sampler, steps, guidance and seed (spelled out here,
        # not through TransmitSettings.to_sampling, so a setting dropped on the way is seen)
        cond = receiver_maps(received_frame(name, **settings), fds=settings["fds"]).conditioning[None]
        direct = generator.generate(cond, SamplingSettings(sampler=settings["sampler"], steps=settings["steps"],
                                                           guidance_scale=settings["guidance_scale"],
                                                           seed=settings["seed"]))
        rgb = generator.to_uint8(direct)[0]
        diff = np.abs(mixed[name][:, :, ::-1].astype(int) - rgb.astype(int))  # cv2 decodes BGR
        assert diff.max() <= 1, (name, "direct", int(diff.max()))
    # and the settings matter: every two jobs' images differ by many grey levels
    names = [n for n, _ in JOBS]
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            assert np.abs(mixed[x].astype(int) - mixed[y].astype(int)).max() > 10, (x, y)
