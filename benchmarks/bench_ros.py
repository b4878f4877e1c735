"""maa_ros benchmarks (results go in BENCHMARKS.md, section "ROS 2: prompt to actor").

    .venv/bin/python benchmarks/bench_ros.py latency [--spec go2-wtw] [--preset cpu] [-n 30]
        prompt published -> chosen actor received on the actor topic, through a generator node
        process (real rclpy, loopback, default parameters of config/go2.yaml: K = 8, screening on)
    .venv/bin/python benchmarks/bench_ros.py size
        actor blob and serialized UInt8MultiArray sizes per built-in spec

The generator is untrained (PolicyGenerator.untrained with the given preset): timing depends on the
architecture only. Its random actors would fail the action-bound screen, so the bound is lifted
(max_abs_action 1e9); screening still runs and is part of the measured time.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def bench_latency(spec: str = "go2-wtw", preset: str = "cpu", n: int = 30, warmup: int = 3) -> dict:
    import torch

    from maa_core.actor_io import ActorBlob
    from maa_core.trajectory import Trajectory

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ["ROS_DOMAIN_ID"] = str(random.Random(os.getpid()).randint(30, 200))
    from maa_core.serving.untrained import untrained_generator
    from maa_ros.client import GraphClient

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_ros_"))
    gen = untrained_generator(spec, preset, folder=tmp / "gen")
    cmd = [sys.executable, "-m", "maa_ros.generator_node", "--ros-args", "-r", "__node:=maa_generator",
           "--params-file", str(REPO / "config" / "go2.yaml"), "-p", f"generator_dir:={tmp / 'gen'}",
           "-p", "max_abs_action:=1000000000.0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = GraphClient("bench_client")
    try:
        assert client.wait_for_subscribers(1, 60), "generator node did not subscribe"
        st = client.wait_diagnostic(lambda s: s.name == "maa_ros/maa_generator" and s.message.startswith("ready"), 120)
        assert st is not None, "generator node not ready"
        r = np.random.default_rng(0)
        T = gen.prompt_length
        lat, sizes = [], []
        for i in range(warmup + n):
            t = Trajectory(r.normal(size=(T, gen.obs_dim)), r.normal(size=(T, gen.act_dim)), np.arange(T) >= T // 2)
            k = len(client.actors)
            t0 = client.publish_prompt(t)
            got = client.wait_actors(k + 1, timeout=120)
            assert len(got) == k + 1, f"no actor for prompt {i}"
            if i >= warmup:
                lat.append(got[-1][0] - t0)
                sizes.append(len(got[-1][1]))
        ActorBlob.from_bytes(got[-1][1])  # decodes, checksum verified
        time.sleep(0.5)
        with client.lock:  # the node's own time in Engine.generate (generation + screening + blob encoding)
            per_gen = {kv["generation_id"]: float(kv["generate_ms"]) for kv in
                       ({v.key: v.value for v in s.values} for s in client.diagnostics) if "generate_ms" in kv}
        gen_ms = np.array(list(per_gen.values())[-n:])
        ms = 1e3 * np.array(lat)
        from maa_ros.launch_spec import NODE_PARAMETERS
        return {"spec": spec, "preset": preset, "K": NODE_PARAMETERS["maa_generator"]["num_candidates"], "n": n, "prompt_T": T,
                "latency_ms_p50": round(float(np.percentile(ms, 50)), 1),
                "latency_ms_p99": round(float(np.percentile(ms, 99)), 1),
                "latency_ms_max": round(float(ms.max()), 1), "node_generate_ms_p50": round(float(np.median(gen_ms)), 1),
                "actor_bytes": sizes[-1]}
    finally:
        client.close()
        proc.terminate()
        proc.wait(20)


def bench_size() -> dict:
    from rclpy.serialization import serialize_message

    from maa_core.actor_io import ActorBlob
    from maa_core.specs import BUILTIN_SPECS
    from maa_ros.messages import actor_to_msg
    out = {}
    for name, spec in BUILTIN_SPECS.items():
        b = ActorBlob(spec, np.zeros(spec.num_params, np.float32), "maa_generator-0123456789ab", "p-0123456789abcdef",
                      {"candidate": 0, "num_candidates": 8, "seed": 0, "score": 0.0, "valid": 8})
        data = b.to_bytes()
        t0 = time.perf_counter()
        msg = actor_to_msg(data)
        wire = serialize_message(msg)
        out[name] = {"params": spec.num_params, "blob_bytes": len(data), "message_bytes": len(wire),
                     "header_bytes": len(data) - 4 * spec.num_params, "encode_ms": round(1e3 * (time.perf_counter() - t0), 2)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["latency", "size"])
    p.add_argument("--spec", default="go2-wtw")
    p.add_argument("--preset", default="cpu")
    p.add_argument("-n", type=int, default=30)
    a = p.parse_args()
    res = bench_latency(a.spec, a.preset, a.n) if a.what == "latency" else bench_size()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
