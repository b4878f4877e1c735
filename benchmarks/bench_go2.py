"""Go2 deployment benchmarks (results go in BENCHMARKS.md, section "Go2 deployment core").

    .venv/bin/python benchmarks/bench_go2.py loop --minutes 10 --swaps 100   # tick compute, missed ticks, swap latency, bridge RTF
    .venv/bin/python benchmarks/bench_go2.py sim --seconds 20                # in-process MuJoCo Go2 speed (no DDS)

`loop` runs the simulated Go2 bridge in a subprocess (real time, DDS on loopback) and the controller in
this process: stand up, then RUN with generated-shape actors (random weights scaled to small
outputs) swapped in `--swaps` times at even intervals, each submitted as blob bytes (as they arrive
from a ROS topic). Swap latency = submit_actor(bytes) to the start of the first tick that runs it.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def small_actor_bytes(seed: int, gid: str, spec_name: str = "go2-wtw") -> bytes:
    from maa_core.actor_io import ActorBlob
    from maa_core.specs import get_spec
    spec = get_spec(spec_name)
    rng = np.random.default_rng(seed)
    params = (rng.normal(size=spec.num_params) * 0.002).astype(np.float32)  # outputs ~1e-2: the robot keeps standing
    return ActorBlob(spec, params, generation_id=gid).to_bytes()


def pct(x, qs=(50, 99, 100)):
    x = np.asarray(x)
    return {f"p{q}" if q < 100 else "max": float(np.percentile(x, q)) for q in qs}


# --actor: which actors are swapped in. go2-wtw: the pretrained walk-these-ways actor's shape (~1.2M parameters,
# a 5 MB blob; with that run's adaptation module from ../shared/wtw); go2-walk: the shipped generator's students
# (139k parameters; our adaptation module, models/go2-adaptation)
ACTORS = {"go2-wtw": REPO.parent / "shared" / "wtw", "go2-walk": ""}


def bench_loop(minutes: float, swaps: int, domain: int, publish_every: int, loop_cpu: int = -1,
               actor: str = "go2-wtw") -> dict:
    import dataclasses
    from maa_core.go2.config import load_robot_config
    from maa_core.go2.controller import Controller
    from maa_core.go2.dds import Go2DdsRobot
    from maa_core.go2.safety import Mode
    from maa_core.go2.state import LowState
    from maa_core.go2.wtw import load_wtw_run

    stats_path = Path(tempfile.mkdtemp()) / "bridge.json"
    bridge = subprocess.Popen([sys.executable, "-m", "maa_core.go2.sim.bridge", "--domain", str(domain), "--interface", "lo",
                               "--stats", str(stats_path), "--exit-with-parent", "--rt-priority", "10",
                               "--publish-every", str(publish_every)],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        cfg = load_robot_config("go2")
        if loop_cpu >= 0:
            cfg = dataclasses.replace(cfg, control=dataclasses.replace(cfg.control, loop_cpu=loop_cpu))
        robot = Go2DdsRobot(cfg, domain=domain, interface="lo", release_sport_mode=False).open()
        st = LowState()
        deadline = time.monotonic() + 30
        while not robot.read_state(st):
            assert time.monotonic() < deadline, "no lowstate from the bridge"
            time.sleep(0.05)
        ctl = Controller(cfg, robot, load_wtw_run(ACTORS[actor]), spec=actor).start()
        blobs = [small_actor_bytes(k, f"gen{k}", actor) for k in range(swaps + 1)]
        assert ctl.submit_actor(blobs[0]).wait(10).accepted
        ctl.enable()
        while ctl.mode != Mode.RUN:
            assert time.monotonic() < deadline + 10, ctl.supervisor.reason
            time.sleep(0.05)
        gc_pauses = []  # full (generation 2) collections during the run: they hold the GIL throughout

        def on_gc(phase, info, t=[0.0]):
            if info["generation"] == 2:
                if phase == "start":
                    t[0] = time.perf_counter()
                else:
                    gc_pauses.append(1000 * (time.perf_counter() - t[0]))
        gc.callbacks.append(on_gc)
        t_run, tick0 = time.monotonic(), ctl.tick_index
        missed0, over0 = ctl.missed_ticks, ctl.overruns
        duration = minutes * 60.0
        interval = duration / (swaps + 1)
        results = []
        n_trans = len(ctl.supervisor.transitions)
        for k in range(1, swaps + 1):
            time.sleep(max(0.0, t_run + k * interval - time.monotonic()))
            if ctl.mode == Mode.DAMP:  # a fault (reported below): stand up again so the run keeps measuring RUN ticks
                ctl.enable()
            results.append(ctl.submit_actor(blobs[k]).wait(10))
        time.sleep(max(0.0, t_run + duration - time.monotonic()))
        ticks = ctl.tick_index - tick0
        gc.callbacks.remove(on_gc)
        ring = len(ctl.compute_times)
        # tick statistics over RUN ticks only: a fault's DAMP / STAND_UP ticks run no policy
        in_run = np.ones(ticks, bool)
        trans = ctl.supervisor.transitions[n_trans:]
        for tr in trans:
            in_run[max(0, tr.tick - tick0):] = tr.new == Mode.RUN
        idx = (np.arange(tick0, tick0 + ticks)[in_run])[-ring:] % ring
        ct, pt = ctl.compute_times[idx], ctl.prepare_times[idx]
        out = {
            "duration_s": time.monotonic() - t_run, "ticks": ticks, "mode_at_end": ctl.mode.name,
            "missed_ticks": ctl.missed_ticks - missed0, "overruns": ctl.overruns - over0,
            "faults": int(ctl.counters["faults"]), "swaps_accepted": sum(r.accepted for r in results),
            "transitions": [f"{tr.time - t_run:.2f} s, tick {tr.tick}: {tr.old.name} -> {tr.new.name} ({tr.reason})"
                            for tr in trans],
            "run_ticks": int(in_run.sum()),
            "tick_compute_ms": {k: 1000 * v for k, v in pct(ct).items()},
            # after the command went out: the older history rows' share of the next tick's first layers
            "after_send_prepare_ms": {k: 1000 * v for k, v in pct(pt).items()},
            "swap_latency_ms": {k: 1000 * v for k, v in pct([r.latency_s for r in results if r.accepted]).items()},
            "swap_validation_ms": {k: 1000 * v for k, v in pct([r.decided_at - r.submitted_at for r in results]).items()},
            # where validation's wall time goes (ms p50 / p99 per step: queued = waiting for the validator thread)
            "swap_validation_stages_ms": {k: {q: round(v, 2) for q, v in pct(
                [r.details["stages_ms"][k] for r in results if k in r.details.get("stages_ms", {})]).items()}
                for k in ("queued", "decode", "canary", "numpy_path_wait", "judge", "checksum_wait", "validator_cpu")},
            # rt/lowstate samples the ticks took (one per tick at most), and how many needed the IDL deserializer
            # each late wake-up that missed ticks: seconds into the run, ms late, and where the nearest
            # swap was then (ms since its submission; decided/active ms after submission)
            "missed_at": [(round(t - t_run, 2), round(1000 * late, 1)) + min(
                ((round(1000 * (t - r.submitted_at), 1), round(1000 * (r.decided_at - r.submitted_at), 1),
                  round(1000 * (r.active_at - r.submitted_at), 1)) for r in results),
                key=lambda x: abs(x[0]), default=()) for t, late in getattr(ctl, "missed_at", []) if t >= t_run],
            "gc_full_collections": {"count": len(gc_pauses), "max_ms": round(max(gc_pauses, default=0.0), 1)},
            "lowstate_taken": robot.states_received, "lowstate_idl_fallback": getattr(robot, "states_deserialized", -1),
            # the 5 slowest ticks: seconds into the run (index x period, approximate after missed ticks),
            # ms, and ms from the nearest swap submission (negative: before it) -- is a tail swap-related?
            "slowest_ticks": [(round(float(k) * ctl.period, 2), round(1000 * float(ct[k]), 2),
                               round(1000 * min((float(k) * ctl.period - (r.submitted_at - t_run) for r in results),
                                                key=abs), 1) if results else None)
                              for k in np.argsort(ct)[::-1][:5]],
        }
        ctl.close()
        robot.close()
    finally:
        bridge.send_signal(signal.SIGTERM)
        try:
            bridge.wait(10)
        except subprocess.TimeoutExpired:
            bridge.kill()
    if stats_path.exists():
        b = json.loads(stats_path.read_text())
        out["bridge"] = {"real_time_factor": b["rtf"], "late_steps": b["late_steps"], "steps": b["steps"],
                         "lowstate_published": b["published"], "lowcmd_received": b["cmds"]}
    return out


def bench_sim(seconds: float) -> dict:
    from maa_core.go2.sim.env import Go2Sim
    from maa_core.go2.state import LowState
    sim, st = Go2Sim("go2"), LowState()
    n = int(seconds / sim.dt)
    t = time.perf_counter()
    for _ in range(n):
        sim.step()
        sim.read(st)
    wall = time.perf_counter() - t
    return {"sim_s": seconds, "wall_s": wall, "real_time_factor": seconds / wall, "steps_per_s": n / wall}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    lp = sub.add_parser("loop")
    lp.add_argument("--minutes", type=float, default=10.0)
    lp.add_argument("--swaps", type=int, default=100)
    lp.add_argument("--domain", type=int, default=232 - os.getpid() % 20)
    lp.add_argument("--publish-every", type=int, default=1, help="bridge lowstate every n 2 ms steps")
    lp.add_argument("--actor", default="go2-wtw", choices=sorted(ACTORS), help="spec of the swapped actors")
    lp.add_argument("--loop-cpu", type=int, default=-1, help="pin the control loop thread to this CPU (control.loop_cpu)")
    sp = sub.add_parser("sim")
    sp.add_argument("--seconds", type=float, default=20.0)
    a = p.parse_args()
    res = bench_loop(a.minutes, a.swaps, a.domain, a.publish_every, a.loop_cpu, a.actor) if a.what == "loop" else bench_sim(a.seconds)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
