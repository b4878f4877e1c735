"""The maa_ros graph as separate processes (`maa-ros launch go2_generate`), real rclpy, isolated
ROS_DOMAIN_ID: bag prompts -> actors, topic prompts -> actors, late joiners, malformed input,
services, prompt recorder, launcher shutdown and node-death reporting."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from maa_core import prompts
from maa_core.actor_io import ActorBlob
from maa_core.trajectory import Trajectory

REPO = Path(__file__).resolve().parents[1]
# this module's own ROS domains (102..141, and +40 for the launcher-death test); test_ros_go2 uses 182..199
DOMAIN = 102 + os.getpid() % 40


@pytest.fixture(scope="module")
def ros_env():
    old = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(DOMAIN)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    yield {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if old is None:
        os.environ.pop("ROS_DOMAIN_ID")
    else:
        os.environ["ROS_DOMAIN_ID"] = old


def make_traj(gen_dims, T, seed, success=True):
    obs, act = gen_dims
    r = np.random.default_rng(seed)
    return Trajectory(r.normal(size=(T, obs)), np.tanh(r.normal(size=(T, act))), (np.arange(T) >= T // 2) if success else None)


@pytest.fixture(scope="module")
def setup_dir(tmp_path_factory):
    from maa_core.serving.untrained import untrained_generator
    d = tmp_path_factory.mktemp("maa_ros_graph")
    gen = untrained_generator("metaworld-sac", folder=d / "gen")
    info = {"dir": d, "spec": gen.spec, "T": gen.prompt_length, "dims": (gen.obs_dim, gen.act_dim)}
    cfg = yaml.safe_load((REPO / "config" / "go2.yaml").read_text())
    cfg["maa_generator"]["ros__parameters"].update(num_candidates=3, max_prompt_values=20000)
    # prompts 50 ms apart, so the two actors overlap: the ACTOR topic keeps only the newest actor (depth 1,
    # latched) and a reader may never see the first; the tests read each generation from the generator's
    # reports on /diagnostics and an actor's bytes only once it is the one in force (see `actor_in_force`)
    cfg["maa_bag_player"]["ros__parameters"].update(rate=20.0, wait_for_subscribers=2)
    cfg["maa_prompt_recorder"]["ros__parameters"].update(window=info["T"], stride=info["T"], save_dir=str(d / "saved"))
    (d / "params.yaml").write_text(yaml.safe_dump(cfg))
    info["bag_items"] = [make_traj(info["dims"], info["T"] + i, seed=i, success=i % 2 == 0) for i in range(2)]
    prompts.write_prompts_to_bag(d / "bag_sqlite3", info["bag_items"], storage="sqlite3")
    info["mcap_items"] = [make_traj(info["dims"], info["T"], seed=10 + i) for i in range(2)]
    prompts.write_prompts_to_bag(d / "bag_mcap", info["mcap_items"], storage="mcap", topic="/recorded")
    return info


def start_launch(env, log: Path, *args):
    cmd = [sys.executable, "-m", "maa_ros.launcher", "launch", "go2_generate", "--grace", "10", *args]
    return subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=REPO)


@pytest.fixture(scope="module")
def graph(ros_env, setup_dir):
    from maa_ros.client import GraphClient
    d = setup_dir["dir"]
    client = GraphClient("maa_test_client")
    client.subscribe_prompts("maa/prompt")
    client.subscribe_prompts("maa/recorded_prompts")
    log = d / "launch.log"
    proc = start_launch(ros_env, log, f"generator_dir:={d / 'gen'}", f"prompt_bag:={d / 'bag_sqlite3'}",
                        f"config:={d / 'params.yaml'}", "controller:=false")
    yield {**setup_dir, "client": client, "proc": proc, "log": log}
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        rc = proc.wait(30)
        text = log.read_text()
        assert rc == 0, text[-3000:]
        assert "stopped (SIGINT)" in text and "still running" not in text
        pids = [int(p) for p in re.findall(r"started \w+ \(pid (\d+)\)", text)]
        assert pids and all(not Path(f"/proc/{p}").exists() for p in pids)
    finally:
        if proc.poll() is None:
            proc.kill()
        client.close()


def decoded(actors):
    return [ActorBlob.from_bytes(b) for _, b in actors]  # verifies format, NaN and checksum


GENERATOR = "maa_ros/maa_generator"
_IN_FORCE = re.compile(r"(published|reverted to) actor (\S+)")


def generator_errors(client, since=0):
    with client.lock:
        return [s for s in client.diagnostics[since:] if s.name == GENERATOR and s.level == b"\x02"]


def generator_events(client):
    """The generator's 'published actor' / 'reverted to actor' reports, in order, as (kind, generation id, values).
    /diagnostics is reliable with a 10-deep history and carries one status per event, so the client gets every
    one; the periodic repeats of a status (same message, same counters) are dropped."""
    with client.lock:
        statuses = [s for s in client.diagnostics if s.name == GENERATOR]
    events, seen = [], set()
    for s in statuses:
        m = _IN_FORCE.match(s.message)
        if not m:
            continue
        kv = {v.key: v.value for v in s.values}
        key = (s.message, kv.get("actors_published"), kv.get("reverts"))
        if key not in seen:
            seen.add(key)
            events.append((m.group(1), m.group(2), kv))
    return events


def generations(client) -> list[dict]:
    """Every actor the generator published: {generation_id, prompt_id, checksum}, in publication order."""
    return [{k: kv[k] for k in ("generation_id", "prompt_id", "checksum")}
            for kind, gid, kv in generator_events(client) if kind == "published" and kv.get("generation_id") == gid]


def wait_generation(client, prompt_id, known=(), timeout=60) -> dict:
    """The first generation for `prompt_id` whose id is not in `known` (waits for it)."""
    def new():
        return [g for g in generations(client) if g["prompt_id"] == prompt_id and g["generation_id"] not in known]
    assert _wait(lambda: bool(new()), timeout), (prompt_id, [s.message for s in client.diagnostics[-10:]])
    return new()[0]


def actor_in_force(client, gen: dict, timeout=30):
    """(blob, bytes) of `gen`'s actor once it is the newest actor the client holds. The actor topic is latched and
    reliable: the actor in force, with nothing newer published, reaches every reader (one in between may not)."""
    last = []

    def arrived():
        with client.lock:
            data = client.actors[-1][1] if client.actors else None
        if data is not None and (not last or last[1] is not data):
            last[:] = [ActorBlob.from_bytes(data), data]  # verifies format, NaN and checksum
        return bool(last) and last[0].checksum == gen["checksum"]
    assert _wait(arrived, timeout), (gen, last[0].generation_id if last else None)
    blob = last[0]
    assert (blob.generation_id, blob.prompt_id) == (gen["generation_id"], gen["prompt_id"])
    return blob, last[1]


def known_ids(client) -> set:
    return {g["generation_id"] for g in generations(client)}


def check_actor(graph, blob):
    graph["spec"].check_compatible(blob.spec)
    assert blob.actor().act(np.zeros((1, graph["spec"].obs_dim), np.float32)).shape == (1, graph["spec"].act_dim)


def test_bag_replays_into_identical_prompts_and_actors(graph):
    c = graph["client"]
    want = [prompts.prompt_id(t) for t in graph["bag_items"]]
    assert _wait(lambda: len(generations(c)) >= 2, 60), graph["log"].read_text()[-3000:]
    gens = generations(c)
    assert [g["prompt_id"] for g in gens] == want  # one actor per bag prompt, in bag order
    assert _wait(lambda: len(c.prompts["maa/prompt"]) >= 2, 10)
    with c.lock:
        got = [prompts.from_message(m) for m in c.prompts["maa/prompt"]]
    assert len(got) == 2
    for w, g in zip(graph["bag_items"], got):
        assert np.array_equal(w.states, g.states) and np.array_equal(w.actions, g.actions)
        assert (w.success is None and g.success is None) or np.array_equal(w.success, g.success)
    # the second actor is in force; the first may have been replaced in flight (depth 1): ~/revert puts it back
    second, _ = actor_in_force(c, gens[1])
    r = c.call("/maa_generator/revert")
    assert r.success and gens[0]["generation_id"] in r.message, r.message
    first, _ = actor_in_force(c, gens[0])
    for b in (first, second):
        check_actor(graph, b)
    # anything else the client received was one of the two, bit for bit
    assert {b.checksum for b in decoded(c.actors)} <= {first.checksum, second.checksum}


def test_mcap_bag_replays_through_play_service(graph):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    c = graph["client"]
    with c.lock:
        n0 = len(c.prompts["maa/prompt"])
    req = SetParameters.Request(parameters=[
        Parameter(name="bag", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(graph["dir"] / "bag_mcap"))),
        Parameter(name="topic", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="/recorded"))])
    assert all(r.successful for r in c.call("/maa_bag_player/set_parameters", req, SetParameters).results)
    assert c.call("/maa_bag_player/play").success
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(c.prompts["maa/prompt"]) < n0 + 2:
        time.sleep(0.05)
    with c.lock:
        got = [prompts.from_message(m) for m in c.prompts["maa/prompt"][n0:]]
    assert len(got) == 2
    for want, g in zip(graph["mcap_items"], got):
        assert np.array_equal(want.states, g.states) and np.array_equal(want.success, g.success)
    for t in graph["mcap_items"]:  # each yields an actor (and no generation is left in flight for the next test)
        wait_generation(c, prompts.prompt_id(t), timeout=60)


def test_prompt_on_topic_yields_actor_with_spec_and_checksum(graph):
    c = graph["client"]
    known = known_ids(c)
    t = make_traj(graph["dims"], graph["T"] + 3, seed=99)
    # the first test of the graph: the generator may still be starting (its reader not yet discovered)
    assert c.wait_for_node_subscription("maa_generator", timeout=60)
    time.sleep(0.5)  # discovery of the reader precedes the reliable writer's match by a few ms
    c.publish_prompt(t)
    gen = wait_generation(c, prompts.prompt_id(t), known)
    blob, _ = actor_in_force(c, gen)
    assert blob.prompt_id == prompts.prompt_id(t) and blob.generation_id.startswith("maa_generator-")
    assert blob.checksum == gen["checksum"]
    graph["spec"].check_compatible(blob.spec)


def test_late_joiner_receives_the_current_actor(graph):
    from maa_ros.client import GraphClient
    c = graph["client"]
    _, gid, _ = generator_events(c)[-1]  # the actor in force: the last one published or reverted to
    _, data = actor_in_force(c, next(g for g in generations(c) if g["generation_id"] == gid))
    late = GraphClient("maa_test_late")
    try:
        got = late.wait_actors(1, timeout=20)
        time.sleep(0.5)
        assert len(late.actors) == 1 and got[0][1] == data
    finally:
        late.close()


def bad_prompt_messages(dims, T):
    from maa_ros.messages import prompt_to_msg
    good = lambda **kw: prompt_to_msg(make_traj(dims, T, seed=5, **kw))  # noqa: E731
    wrong_shape = prompt_to_msg(make_traj((dims[0] + 1, dims[1]), T, seed=5))
    nan = good()
    nan.data[7] = float("nan")
    truncated = good()
    truncated.data = truncated.data[:-3]
    oversized = prompt_to_msg(make_traj(dims, 600, seed=5))  # 600 x 44 > max_prompt_values 20000
    short = prompt_to_msg(make_traj(dims, T - 1, seed=5))
    labels = good()
    labels.layout.dim[0].label = "time"
    return {"states have": wrong_shape, "NaN": nan, "values, layout says": truncated,
            "exceeds the limit": oversized, "needs at least": short, "layout labels": labels}


def test_malformed_prompts_are_reported_and_the_node_keeps_working(graph):
    c = graph["client"]
    with c.lock:
        since = len(c.diagnostics)
    cases = bad_prompt_messages(graph["dims"], graph["T"])
    for msg in cases.values():
        c.publish_prompt(msg)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msgs = [s.message for s in generator_errors(c, since)]
        if all(any(w in m for m in msgs) for w in cases):
            break
        time.sleep(0.1)
    msgs = [s.message for s in generator_errors(c, since)]
    for words in cases:
        assert any(words in m for m in msgs), (words, msgs)
    assert all("\n" not in m for m in msgs)
    known = known_ids(c)
    t = make_traj(graph["dims"], graph["T"], seed=123)
    c.publish_prompt(t)
    blob, _ = actor_in_force(c, wait_generation(c, prompts.prompt_id(t), known))
    check_actor(graph, blob)


def test_generate_now_and_revert(graph):
    c = graph["client"]
    _, gid, _ = generator_events(c)[-1]
    before, _ = actor_in_force(c, next(g for g in generations(c) if g["generation_id"] == gid))
    known = known_ids(c)
    r = c.call("/maa_generator/generate_now")
    assert r.success, r.message
    after, _ = actor_in_force(c, wait_generation(c, before.prompt_id, known))
    assert after.prompt_id == before.prompt_id and after.checksum != before.checksum  # next seed
    r = c.call("/maa_generator/revert")
    assert r.success and before.generation_id in r.message
    reverted, _ = actor_in_force(c, {"generation_id": before.generation_id, "prompt_id": before.prompt_id,
                                     "checksum": before.checksum})
    assert reverted.generation_id == before.generation_id and reverted.checksum == before.checksum


def test_prompt_recorder_windows_send_and_save(graph):
    from maa_ros.messages import prompt_to_msg
    from std_msgs.msg import Float32MultiArray
    from maa_ros import qos
    c = graph["client"]
    T = graph["T"]
    steps_pub = c.node.create_publisher(Float32MultiArray, "maa/go2/steps", qos.STATE)
    assert _wait(lambda: steps_pub.get_subscription_count() >= 1, 20)
    t = make_traj(graph["dims"], 3 * T, seed=7)
    bad = prompt_to_msg(make_traj(graph["dims"], 1, seed=8))
    bad.layout.dim[2].size = 99
    rec = None
    for _ in range(40):  # best-effort: the first samples may go out before the match completes
        steps_pub.publish(bad)
        rec = c.wait_diagnostic(lambda s: s.name == "maa_ros/maa_prompt_recorder" and s.level == b"\x02", 0.25)
        if rec is not None:
            break
    assert rec is not None and "step:" in rec.message
    for i in range(len(t)):
        steps_pub.publish(prompt_to_msg(Trajectory(t.states[i:i + 1], t.actions[i:i + 1], t.success[i:i + 1])))
        time.sleep(0.005)
    # 3 windows when every (best-effort) step arrives; at least 2
    assert _wait(lambda: len(c.prompts["maa/recorded_prompts"]) >= 2, 20)

    def windows():
        with c.lock:
            return [prompts.from_message(m) for m in c.prompts["maa/recorded_prompts"]]
    known = known_ids(c)
    r = c.call("/maa_prompt_recorder/send_prompt")
    assert r.success, r.message
    sent = r.message.split()[-1]  # "sent prompt <id>": the newest window
    assert _wait(lambda: sent in [prompts.prompt_id(w) for w in windows()], 10), (sent, r.message)
    blob, _ = actor_in_force(c, wait_generation(c, sent, known))
    assert blob.prompt_id == sent
    r = c.call("/maa_prompt_recorder/save")
    assert r.success, r.message
    saved = [p for p, _ in prompts.read_prompts_from_bag(r.message.split(" to ")[-1])]
    assert saved[-1] == sent and _wait(lambda: saved == [prompts.prompt_id(w) for w in windows()], 10), saved
    assert len(saved) >= 2 and all(len(w) == T for w in windows())
    c.node.destroy_publisher(steps_pub)


def test_launcher_reports_a_dead_required_node(ros_env, setup_dir, tmp_path):
    env = {**ros_env, "ROS_DOMAIN_ID": str(DOMAIN + 40)}
    log = tmp_path / "launch.log"
    proc = start_launch(env, log, f"generator_dir:={setup_dir['dir'] / 'gen'}", "controller:=false")
    try:
        assert _wait(lambda: len(re.findall(r"started \w+ \(pid (\d+)\)", log.read_text())) == 2, 30)
        pids = dict(re.findall(r"started (\w+) \(pid (\d+)\)", log.read_text()))
        time.sleep(1.0)
        os.kill(int(pids["maa_generator"]), signal.SIGKILL)
        assert proc.wait(30) == 1
        text = log.read_text()
        assert "node maa_generator exited with code -9 (required: shutting down)" in text
        assert not Path(f"/proc/{pids['maa_prompt_recorder']}").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def _wait(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def test_prompt_recorder_joint_state_input(graph, ros_env, tmp_path):
    """Generic robots: state = JointState position || velocity, action = the latest command's position."""
    from sensor_msgs.msg import JointState
    from maa_ros import qos
    c = graph["client"]
    c.subscribe_prompts("js/windows")
    cmd = [sys.executable, "-m", "maa_ros.prompt_recorder_node", "--ros-args", "-r", "__node:=maa_recorder_js",
           "-p", "input:=joint_state", "-p", "window:=4", "-p", "stride:=4", "-p", "windows_topic:=js/windows"]
    proc = subprocess.Popen(cmd, env=ros_env, cwd=REPO, stdout=open(tmp_path / "js.log", "w"), stderr=subprocess.STDOUT)
    try:
        state_pub = c.node.create_publisher(JointState, "joint_states", qos.STATE)
        cmd_pub = c.node.create_publisher(JointState, "joint_commands", qos.STATE)
        assert _wait(lambda: state_pub.get_subscription_count() >= 1 and cmd_pub.get_subscription_count() >= 1, 30)
        err = None
        for _ in range(40):  # best-effort: the first samples may go out before the match completes
            state_pub.publish(JointState(position=[0.0, 0.0], velocity=[0.0, 0.0]))  # no command yet: reported
            err = c.wait_diagnostic(lambda s: s.name == "maa_ros/maa_recorder_js" and "no command received" in s.message, 0.25)
            if err is not None:
                break
        assert err is not None and err.level == b"\x02"
        for i in range(8):
            cmd_pub.publish(JointState(position=[0.1 * i, -0.1 * i, 0.5]))
            time.sleep(0.02)
            state_pub.publish(JointState(position=[float(i), 1.0], velocity=[2.0, 3.0]))
            time.sleep(0.02)
        assert _wait(lambda: len(c.prompts["js/windows"]) >= 1, 20), (tmp_path / "js.log").read_text()
        w = prompts.from_message(c.prompts["js/windows"][0])
        assert w.states.shape == (4, 4) and w.actions.shape == (4, 3)
        assert np.allclose(w.states[:, 2:], [2.0, 3.0]) and np.allclose(w.actions[:, 2], 0.5)
        c.node.destroy_publisher(state_pub)
        c.node.destroy_publisher(cmd_pub)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0


# real-time loops, DDS and ROS graphs: one pytest-xdist worker runs all such files, in order (see Makefile)
pytestmark = pytest.mark.xdist_group("realtime")
