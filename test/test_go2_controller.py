"""Controller logic with an in-process fake robot (no DDS): runtime trips of an accepted actor
(revert in the same tick, damping on non-finite actions) and limit faults."""
import time

import numpy as np
import pytest
import torch

from maa_core.actor_io import ActorBlob
from maa_core.go2.config import load_robot_config
from maa_core.go2.controller import Controller
from maa_core.go2.safety import Mode
from maa_core.go2.state import LowState
from maa_core.go2.wtw import load_wtw_run
from maa_core.specs import get_spec

CFG = load_robot_config("go2")


class FakeRobot:
    """Always-fresh standing state; records what was sent."""

    def __init__(self):
        self.st = LowState()
        self.st.q[:] = CFG.stand_pose
        self.sent = 0

    def read_state(self, out):
        self.st.stamp = time.monotonic()
        out.copy_from(self.st)
        return True

    def send(self, cmd):
        self.sent += 1


class TripsWhenAlone(torch.nn.Module):
    """Passes the canary (batched inputs), misbehaves on the single observation of a real tick."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        out = torch.zeros(x.shape[0], 12)
        return out + self.value if x.shape[0] == 1 else out


def const_blob(v, gid):
    spec = get_spec("go2-wtw")
    p = np.zeros(spec.num_params, np.float32)
    p[-12:] = v
    return ActorBlob(spec, p, generation_id=gid)


@pytest.fixture
def running(shared_dir):
    robot = FakeRobot()
    ctl = Controller(CFG, robot, load_wtw_run(shared_dir / "wtw"))
    records = []
    ctl.add_tick_listener(records.append)
    ctl.start()
    assert ctl.submit_actor(const_blob(0.1, "good")).wait(10).accepted
    ctl.enable()
    deadline = time.monotonic() + 5
    while ctl.mode != Mode.RUN:
        assert time.monotonic() < deadline, ctl.supervisor.reason
        time.sleep(0.02)
    ctl.records = records
    yield ctl, robot
    ctl.close()


def _settle(ctl, ticks=5):
    k = ctl.tick_index + ticks
    while ctl.tick_index < k:
        time.sleep(0.01)
    time.sleep(0.05)


def test_out_of_bound_action_reverts_in_the_same_tick(running):
    ctl, _ = running
    r = ctl.submit_actor(TripsWhenAlone(50.0), generation_id="tripper").wait(5)
    assert r.accepted, r.reason
    _settle(ctl)
    assert ctl.mode == Mode.RUN and ctl.active_generation == "good" and ctl.counters["reverts"] == 1
    tick = [rec for rec in ctl.records if rec.tick == r.active_tick][0]
    assert np.allclose(tick.action, 0.1) and tick.generation_id == "good"  # the previous actor drove that tick
    assert ctl.counters["faults"] == 0


def test_non_finite_action_damps_and_reverts(running):
    ctl, _ = running
    assert ctl.submit_actor(TripsWhenAlone(float("nan")), generation_id="nan-later").wait(5).accepted
    _settle(ctl)
    assert ctl.mode == Mode.DAMP and "non-finite action from nan-later" in ctl.supervisor.reason
    assert ctl.active_generation == "good"
    assert np.all(ctl.cmd.kp == 0)


def test_joint_limit_and_tilt_faults_damp(running):
    ctl, robot = running
    robot.st.q[2] = CFG.joint_lower[2] - 0.3
    _settle(ctl, 2)
    assert ctl.mode == Mode.DAMP and ctl.supervisor.reason.startswith("joint limit: FR_calf")
    robot.st.q[:] = CFG.stand_pose
    ctl.enable()
    _settle(ctl, 2)
    assert ctl.mode in (Mode.STAND_UP, Mode.RUN)
    robot.st.quat[:] = [np.cos(0.5), np.sin(0.5), 0.0, 0.0]  # 1 rad roll
    _settle(ctl, 2)
    assert ctl.mode == Mode.DAMP and ctl.supervisor.reason.startswith("body tilt")
    kinds = [t.reason for t in ctl.supervisor.transitions]
    assert kinds[0] == "enable requested" and len(kinds) >= 5


def test_diagnostics_and_revert_without_previous(shared_dir, caplog):
    ctl = Controller(CFG, FakeRobot(), load_wtw_run(shared_dir / "wtw")).start()
    try:
        r = ctl.revert().wait(2)
        assert not r.accepted and "nothing to revert" in r.reason
        d = ctl.diagnostics()
        assert d["mode"] == "DAMP" and d["missed_ticks"] >= 0 and d["active_generation"] == ""
        assert d["command_clamped"] == d["command_rejected"] == d["gamepad_rejected"] == 0
        # beyond command_limits: clamped, each counted, only the first logged
        with caplog.at_level("WARNING", logger="maa.go2.controller"):
            for k in range(5):
                assert ctl.set_command(5.0, -5.0, 0.2 + k) == (1.2, -0.5, min(0.2 + k, 1.5))
            assert ctl.set_command(float("nan"), 0.0, 0.0) is None
            assert ctl.set_command(0.1, float("inf"), 0.0) is None
        assert ctl._velocity == (1.2, -0.5, 1.5)  # a refused command leaves the last one
        assert ctl.set_command(0.3, 0.0, 0.0) == (0.3, 0.0, 0.0)
        d = ctl.diagnostics()
        assert d["command_clamped"] == 5 and d["command_rejected"] == 2
        msgs = [r.getMessage() for r in caplog.records]
        assert sum("beyond command_limits" in m for m in msgs) == 1
        assert sum("non-finite velocity refused" in m for m in msgs) == 1
    finally:
        ctl.close()


def test_loop_thread_pinned_to_a_cpu_when_configured(shared_dir, caplog):
    """control.loop_cpu pins the loop thread (only it); a CPU that cannot be used is logged, not fatal."""
    import dataclasses
    import os
    import threading
    cpu = max(os.sched_getaffinity(0))
    for want, pinned in ((cpu, True), (4096, False)):
        cfg = dataclasses.replace(CFG, control=dataclasses.replace(CFG.control, loop_cpu=want))
        ctl = Controller(cfg, FakeRobot(), load_wtw_run(shared_dir / "wtw")).start()
        try:
            _settle(ctl, 3)
            loop = next(t for t in threading.enumerate() if t.name == "go2-loop")
            mask = os.sched_getaffinity(loop.native_id)
            assert (mask == {cpu}) == pinned and ctl.tick_index > 0
            assert os.sched_getaffinity(0) != {cpu} or len(os.sched_getaffinity(0)) == 1  # the process is not pinned
        finally:
            ctl.close()
    assert "control loop not pinned to CPU 4096" in caplog.text


def test_cpu_wakeup_latency_is_held_while_running_and_released(shared_dir, tmp_path, monkeypatch, caplog):
    """control.cpu_wakeup_latency_us: the PM QoS request (one 32-bit integer written to the device) is held
    open from start to close; a device that cannot be opened is logged and the controller runs anyway.
    A file stands in for /dev/cpu_dma_latency, so the test can read what was written."""
    import dataclasses
    import os
    import struct
    from maa_core.go2 import realtime
    dev = tmp_path / "cpu_dma_latency"
    dev.write_bytes(b"")
    monkeypatch.setattr(realtime, "CPU_LATENCY_DEVICE", str(dev))
    cfg = dataclasses.replace(CFG, control=dataclasses.replace(CFG.control, cpu_wakeup_latency_us=0))
    ctl = Controller(cfg, FakeRobot(), load_wtw_run(shared_dir / "wtw")).start()
    fd = ctl._latency_fd
    try:
        _settle(ctl, 3)
        assert fd is not None and os.fstat(fd).st_ino == dev.stat().st_ino
        assert dev.read_bytes() == struct.pack("i", 0)
    finally:
        ctl.close()
    with pytest.raises(OSError):
        os.fstat(fd)  # closed: the kernel drops the request
    assert ctl._latency_fd is None
    monkeypatch.setattr(realtime, "CPU_LATENCY_DEVICE", str(tmp_path / "missing" / "cpu_dma_latency"))
    ctl = Controller(cfg, FakeRobot(), load_wtw_run(shared_dir / "wtw")).start()
    try:
        _settle(ctl, 3)
        assert ctl._latency_fd is None and ctl.tick_index > 0
    finally:
        ctl.close()
    assert "CPU wake-up latency not limited" in caplog.text


def test_blob_bytes_are_verified(shared_dir):
    """Blob bytes: an accepted actor passed parse, checksum and canary; a bad blob is refused with its own reason."""
    from maa_core.specs import locomotion_spec
    ctl = Controller(CFG, FakeRobot(), load_wtw_run(shared_dir / "wtw")).start()
    try:
        spec = get_spec("go2-wtw")
        params = (np.random.default_rng(3).normal(size=spec.num_params) * 0.002).astype(np.float32)
        r = ctl.submit_actor(ActorBlob(spec, params, "fine").to_bytes()).wait(10)
        assert r.accepted and r.generation_id == "fine" and r.details["inference_path"] == "numpy", r.reason
        assert ctl.submit_actor(ActorBlob(spec, params, "").to_bytes(), generation_id="named").wait(10).generation_id == "named"
        good = ActorBlob(spec, params, "flipped").to_bytes()
        header = 8 + int.from_bytes(good[:8], "little")
        flipped = bytearray(good)
        flipped[header + 4 * 1000] ^= 1  # lowest mantissa bit of one parameter: finite, but not what was sent
        nan = params.copy()
        nan[11] = np.nan
        huge = np.zeros(spec.num_params, np.float32)
        huge[-12:] = 1e3
        small = locomotion_spec(hidden=(32,), name="small")
        cases = {"checksum mismatch": bytes(flipped), "NaN": ActorBlob(spec, nan, "nan").to_bytes(),
                 "exceeds the bound": ActorBlob(spec, huge, "huge").to_bytes(),
                 "spec mismatch": ActorBlob(small, np.zeros(small.num_params, np.float32), "small").to_bytes(),
                 "not a valid safetensors blob": b"\x10\x00\x00\x00\x00\x00\x00\x00garbage"}
        for reason, data in cases.items():
            r = ctl.submit_actor(data).wait(10)
            assert not r.accepted and reason in r.reason, (reason, r.reason)
        # the checksum runs beside the canary: a corrupted blob that also fails the canary is refused as corrupted
        bad = bytearray(ActorBlob(spec, huge, "huge-flipped").to_bytes())
        bad[header + 4 * 1000] ^= 1
        r = ctl.submit_actor(bytes(bad)).wait(10)
        assert not r.accepted and "checksum mismatch" in r.reason, r.reason
        assert ctl.counters["refused"] == len(cases) + 1 and ctl.active_generation == "named"
        assert ctl.submit_actor(ActorBlob(spec, params, "after").to_bytes()).wait(10).accepted  # validator alive
    finally:
        ctl.close()


def test_start_freezes_the_start_up_objects_for_the_garbage_collector(shared_dir):
    """control.gc_freeze: later full collections (which hold the GIL) skip everything start-up made."""
    import dataclasses
    import gc
    gc.unfreeze()
    try:
        off = dataclasses.replace(CFG, control=dataclasses.replace(CFG.control, gc_freeze=False))
        ctl = Controller(off, FakeRobot(), load_wtw_run(shared_dir / "wtw")).start()
        ctl.close()
        assert gc.get_freeze_count() == 0
        ctl = Controller(CFG, FakeRobot(), load_wtw_run(shared_dir / "wtw")).start()
        ctl.close()
        assert CFG.control.gc_freeze and gc.get_freeze_count() > 10000
    finally:
        gc.unfreeze()


def test_run_starts_after_settling_at_the_policy_gains_with_the_clock_restarted(running):
    """STAND_UP -> RUN: the last `settle_s` of standing at control.kp/kd (not stand.kp/kd), and the actor's
    first step sees the gait-clock phase of training (WtwSimEnv.reset + 30 warm-up steps: 31 clock steps)."""
    from maa_core.go2.verdict import WalkCriteria
    from maa_core.go2.wtw import ObservationBuilder

    ctl, _ = running
    _settle(ctl, 3)
    recs = sorted(ctl.records, key=lambda r: r.tick)
    first_run = next(i for i, r in enumerate(recs) if r.mode == "RUN")
    n = int(round(CFG.stand.settle_s * CFG.control.rate_hz))
    assert n == WalkCriteria().warmup_steps
    before = recs[:first_run]
    # the settle's first tick, then n more (the last of them switches to RUN for the next tick)
    assert [r.kp for r in before[-n - 1:]] == [CFG.control.kp] * (n + 1) and before[-n - 2].kp == CFG.stand.kp
    b = ObservationBuilder(ctl.wtw.config, ctl.builder.default_angles, CFG.gait_command)
    b.reset()
    for _ in range(n + 1):
        b.step_clock()
    np.testing.assert_allclose(recs[first_run].observation[b.sl_clock], b.clock, atol=1e-6)


def test_malformed_blobs_are_refused_and_a_valid_actor_still_swaps_in(running):
    """A blob that breaks the decoder (deep nesting, bad JSON, unknown dtype, truncated, wrong size) is a
    one-line refusal, counted in diagnostics; the running actor is kept and the validator goes on."""
    from blob_mutations import malformed_blobs
    ctl, _ = running
    spec = get_spec("go2-wtw")
    good = ActorBlob(spec, (np.random.default_rng(5).normal(size=spec.num_params) * 0.002).astype(np.float32), "after")
    cases = malformed_blobs(good.to_bytes())
    assert {"nested-header", "nested-extra", "invalid-header", "invalid-extra", "dtype-BF16", "truncated",
            "wrong-size"} <= set(cases)
    for name, data in cases.items():
        r = ctl.submit_actor(data).wait(10)
        assert r is not None and not r.accepted, name
        assert r.reason and "\n" not in r.reason, (name, r.reason)
        assert ctl.mode == Mode.RUN and ctl.active_generation == "good", name
    d = ctl.diagnostics()
    assert d["refused"] == len(cases) and d.get("validator_errors", 0) == 0
    r = ctl.submit_actor(good.to_bytes()).wait(10)
    assert r is not None and r.accepted, r.reason
    _settle(ctl)
    assert ctl.active_generation == "after" and ctl.mode == Mode.RUN


def test_an_accepted_swap_reports_where_its_validation_time_went(running):
    """details["stages_ms"]: each validation step's wall time; together no more than the decision took."""
    ctl, _ = running
    r = ctl.submit_actor(const_blob(0.2, "timed").to_bytes()).wait(10)
    assert r.accepted, r.reason
    st = r.details["stages_ms"]
    steps = ("queued", "decode", "canary", "numpy_path_wait", "judge", "checksum_wait")
    assert set(steps) | {"validator_cpu"} == set(st) and all(v >= 0.0 for v in st.values())
    assert st["decode"] > 0.0 and st["canary"] > 0.0
    assert sum(st[k] for k in steps) <= 1000.0 * (r.decided_at - r.submitted_at) + 0.5


def test_an_unexpected_validator_error_refuses_that_actor_and_the_thread_goes_on(running, monkeypatch):
    ctl, _ = running
    calls = []

    def broken(cand, *args):
        calls.append(cand.generation_id)
        raise AssertionError("a bug in a check")
    monkeypatch.setattr(ctl, "_checks", broken)
    r = ctl.submit_actor(const_blob(0.2, "victim")).wait(10)
    assert r is not None and not r.accepted and r.reason == "actor: validator error (AssertionError: a bug in a check)"
    monkeypatch.undo()
    assert ctl.submit_actor(const_blob(0.2, "next")).wait(10).accepted
    assert calls == ["victim"] and ctl.counters["validator_errors"] == 1


@pytest.mark.parametrize("exc", [RecursionError("maximum recursion depth exceeded while decoding a JSON array"),
                                 KeyError("BF16"), MemoryError()])
def test_any_decoder_error_is_a_counted_refusal(running, monkeypatch, exc):
    """Whatever the blob decoder raises (not only MaaError) is a one-line refusal counted as a decode error."""
    ctl, _ = running

    def broken(data, *a, **k):
        raise exc
    monkeypatch.setattr(ActorBlob, "parse_unverified", staticmethod(broken))
    r = ctl.submit_actor(const_blob(0.2, "x").to_bytes()).wait(10)
    assert not r.accepted and r.reason.startswith(f"actor blob: cannot be decoded ({type(exc).__name__}")
    assert "\n" not in r.reason and ctl.counters["decode_errors"] == 1 and ctl.active_generation == "good"
    monkeypatch.undo()
    assert ctl.submit_actor(const_blob(0.2, "next").to_bytes()).wait(10).accepted


# real-time loops, DDS and ROS graphs: one pytest-xdist worker runs all such files, in order (see Makefile)
pytestmark = pytest.mark.xdist_group("realtime")
