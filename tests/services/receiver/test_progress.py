"""Sampling progress: step k of n and an ETA, from the worker to the result JSON."""

from __future__ import annotations

from receiver.progress import ProgressBoard


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_board_reports_step_and_eta_of_running_jobs_only():
    clock = FakeClock()
    board = ProgressBoard(clock)
    board.begin(["a", "b"])
    p = board.get("a")
    assert p.stage == "preparing" and p.steps == 0 and p.eta_s is None and p.batch_size == 2
    board.sampling(["a"])  # b failed to prepare
    assert board.get("b") is None
    assert board.get("a").eta_s is None  # no step done yet
    clock.t += 2.0
    board.step(4, 20)
    p = board.get("a")
    assert (p.stage, p.step, p.steps) == ("sampling", 4, 20)
    assert p.elapsed_s == 2.0 and p.eta_s == 2.0 / 4 * 16
    board.writing()
    assert board.get("a").stage == "writing" and board.get("a").eta_s == 0.0
    board.end()
    assert board.get("a") is None


def test_worker_feeds_the_board_during_sampling(tiny_generator, tmp_path):
    """The real sampler calls back after each step; the board shows k of n while it runs."""
    import numpy as np
    from svc_helpers import TINY_RESOLUTION

    from gesco.link import TransmitSettings, apply_channel, encode_image_frame
    from gesco.semantics.classes import get_class_space
    from receiver.ingest import Ingest
    from receiver.stores import JobStore
    from receiver.worker import Worker

    store = JobStore(tmp_path, fsync=False)
    ingest = Ingest(store, tiny_generator)
    label = np.zeros(TINY_RESOLUTION, np.int64)
    label[: TINY_RESOLUTION[0] // 2] = 23
    label[TINY_RESOLUTION[0] // 2 :] = 7
    frame, _ = encode_image_frame(np.zeros((*TINY_RESOLUTION, 3), np.uint8), label, space=get_class_space("cityscapes"),
                                  resolution=TINY_RESOLUTION, frame_id="p1",
                                  transmit=TransmitSettings(sampler="ddim", steps=5))
    received = apply_channel(frame)

    class Ctx:
        def abort(self, code, msg):
            raise AssertionError(msg)

    ingest.deliver(received, Ctx())
    seen = []
    board = ProgressBoard()
    worker = Worker(store, tiny_generator, progress=board)
    original = board.step

    def spy(done, total):
        original(done, total)
        seen.append(board.get("p1"))

    board.step = spy
    worker.process(store.claim_batch(4))
    assert store.get("p1").status.value == "done"
    assert [(p.step, p.steps) for p in seen] == [(k, 5) for k in range(1, 6)]
    assert all(p.stage == "sampling" and p.eta_s is not None for p in seen)
    assert seen[-1].eta_s == 0.0
    assert board.get("p1") is None  # finished: no progress any more
    store.close()
