"""``gesco up``'s supervisor: restarts with backoff (fake processes and clock), logged."""

from __future__ import annotations

import argparse

import pytest

from gesco.errors import GescoError
from gesco_net.commands.supervise import RestartPolicy, Supervisor, add_arguments, policy_from_args


class FakeProcess:
    pid_counter = 100

    def __init__(self) -> None:
        FakeProcess.pid_counter += 1
        self.pid = FakeProcess.pid_counter
        self.returncode = None

    def poll(self):
        return self.returncode


class Child:
    def __init__(self, name: str) -> None:
        self.name = name
        self.process = FakeProcess()


def make(policy: RestartPolicy):
    now = [0.0]
    said: list[str] = []
    children = [Child("receiver"), Child("channel"), Child("sender")]

    def launch(child):
        child.process = FakeProcess()

    sup = Supervisor(children, launch, policy, say=said.append, clock=lambda: now[0])
    return sup, children, now, said


def test_dead_child_is_restarted_after_a_doubling_backoff_and_others_untouched():
    sup, (receiver, channel, sender), now, said = make(RestartPolicy(backoff_s=1, max_backoff_s=3, reset_after_s=60))
    others = (channel.process, sender.process)
    waits = []
    for _ in range(4):
        receiver.process.returncode = -9
        old = receiver.process
        sup.poll()
        start = now[0]
        while receiver.process is old:
            now[0] += 0.25
            sup.poll()
        waits.append(now[0] - start)
    assert waits == [1.0, 2.0, 3.0, 3.0]  # 1, 2, 4 capped at 3
    assert (channel.process, sender.process) == others and sup.restarts("receiver") == 4
    assert "the receiver exited (status -9); restarting it in 1.0 s (restart 1)" in said[0]
    assert said[1].startswith("gesco up: the receiver restarted (pid ")


def test_backoff_resets_after_a_healthy_run():
    sup, (receiver, _, _), now, said = make(RestartPolicy(backoff_s=1, max_backoff_s=30, reset_after_s=10))
    for _ in range(3):
        receiver.process.returncode = 1
        sup.poll()
        now[0] += 5
        sup.poll()  # restarted
        now[0] += 30  # ... and ran for 30 s >= reset_after_s
    assert [m.split(" in ")[1].split(" ")[0] for m in said if "exited" in m] == ["1.0", "1.0", "1.0"]
    receiver.process.returncode = 1
    sup.poll()
    now[0] += 1
    sup.poll()
    receiver.process.returncode = 1  # died again at once: the backoff doubles
    sup.poll()
    assert "in 2.0 s" in said[-1]


def test_no_restart_keeps_the_old_behaviour():
    sup, (receiver, _, _), _, _ = make(RestartPolicy(enabled=False))
    receiver.process.returncode = -9
    with pytest.raises(GescoError, match="receiver exited unexpectedly"):
        sup.poll()


def test_options():
    p = argparse.ArgumentParser()
    add_arguments(p)
    policy = policy_from_args(p.parse_args(["--restart-backoff", "0.5", "--max-restart-backoff", "4"]))
    assert policy == RestartPolicy(enabled=True, backoff_s=0.5, max_backoff_s=4.0, reset_after_s=60.0)
    assert not policy_from_args(p.parse_args(["--no-restart"])).enabled
