"""The policy I/O contract (maa_core/go2/contract.py): what it holds, how it travels (generator
folder, actor blob header) and the one-line refusal naming the field that differs. The controller
node's refusal over ROS is tested in test_ros_launch.py."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maa_core.actor_io import ActorBlob
from maa_core.errors import MaaError
from maa_core.go2.config import load_robot_config
from maa_core.go2.contract import (CONTRACT_FILE, PolicyContract, blob_header_contract, blob_refusal, contract_of,
                                   mismatch, read_generator_contract, write_generator_contract)
from maa_core.go2.wtw import load_wtw_run
from maa_core.resources import package_path
from maa_core.specs import get_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ours():
    """The contract of the default deployment: config/go2_robot.yaml and the shipped adaptation module."""
    return contract_of(load_robot_config("go2"), load_wtw_run(""))


def blob(contract=None, gid="c-1"):
    spec = get_spec("go2-walk")
    extra = {"contract": contract.to_dict()} if contract is not None else {}
    return ActorBlob(spec, np.zeros(spec.num_params, np.float32), generation_id=gid, extra=extra)


def test_contract_holds_the_deployment_numbers(ours):
    robot = load_robot_config("go2")
    assert ours.joint_order == tuple(robot.policy_joints) and len(ours.joint_order) == 12
    assert sum(w for _, w in ours.obs_layout) == 70 and ours.history_len == 30
    assert (ours.kp, ours.kd, ours.control_rate_hz) == (robot.control.kp, robot.control.kd, robot.control.rate_hz)
    assert dict(ours.obs_scales)["dof_vel"] == 0.05 and ours.clip_actions == 10.0
    assert len(ours.adaptation_sha256) == 64
    assert PolicyContract.from_dict(json.loads(json.dumps(ours.to_dict()))) == ours


@pytest.mark.parametrize("field,value,words", [
    ("kp", 25.0, "field kp: the actor's is 25, this controller's 20"),
    ("kd", 0.6, "field kd:"),
    ("control_rate_hz", 100.0, "field control_rate_hz:"),
    ("history_len", 15, "field history_len: the actor's is 15"),
    ("action_scale", 0.5, "field action_scale:"),
    ("clip_actions", 5.0, "field clip_actions:"),
    ("adaptation_sha256", "0" * 64, "field adaptation_sha256:"),
    ("joint_order", "swap", "field joint_order[0]: the actor's is FR_hip, this controller's FL_hip"),
    ("obs_scales", "dof_vel", "field obs_scales.dof_vel: the actor's is 0.1, this controller's 0.05"),
    ("obs_layout", "short", "field obs_layout"),
])
def test_a_differing_field_is_one_line_naming_it(ours, field, value, words):
    if value == "swap":
        value = ours.joint_order[3:6] + ours.joint_order[:3] + ours.joint_order[6:]
    elif value == "dof_vel":
        value = tuple((k, 0.1 if k == "dof_vel" else v) for k, v in ours.obs_scales)
    elif value == "short":
        value = ours.obs_layout[:-1]
    theirs = dataclasses.replace(ours, **{field: value})
    msg = mismatch(ours, theirs)
    assert msg is not None and "\n" not in msg and words in msg, msg
    assert mismatch(ours, ours) is None
    # through the blob header, as the controller node reads it
    assert blob_refusal(ours, blob(theirs).to_bytes()) == msg


def test_blob_header_carries_the_contract(ours):
    data = blob(ours).to_bytes()
    assert blob_header_contract(data) == ours
    assert blob_refusal(ours, data) is None
    assert blob_header_contract(blob().to_bytes()) is None  # a blob without one passes (hand-made actors)
    assert blob_refusal(ours, blob().to_bytes()) is None
    # an unreadable header is left to the validator, which refuses the blob with its own reason
    for bad in (b"", b"\x01", data[:20], b"\xff" * 64):
        assert blob_header_contract(bad) is None
    # a malformed contract is refused with one line
    d = ours.to_dict()
    del d["kp"]
    spec = get_spec("go2-walk")
    bad = ActorBlob(spec, np.zeros(spec.num_params, np.float32), extra={"contract": d}).to_bytes()
    msg = blob_refusal(ours, bad)
    assert msg is not None and "missing field(s) ['kp']" in msg and "\n" not in msg
    # an actor generator that recorded no adaptation module is not refused for it
    assert mismatch(ours, dataclasses.replace(ours, adaptation_sha256="")) is None


@pytest.mark.parametrize("edit,words", [
    (lambda d: d.update(format="x"), "format 'x'"),
    (lambda d: d.update(kp="20"), "kp is '20', expected a finite number"),
    (lambda d: d.update(kp=float("nan")), "expected a finite number"),
    (lambda d: d.update(history_len=0), "history_len is 0"),
    (lambda d: d.update(extra=1), "unknown field(s) ['extra']"),
    (lambda d: d.update(joint_order="FL_hip"), "joint_order must be a list"),
    (lambda d: d.update(obs_layout=[["a", -1]]), "obs_layout must be"),
])
def test_malformed_contract_is_one_clear_line(ours, edit, words):
    d = ours.to_dict()
    edit(d)
    with pytest.raises(MaaError, match=None) as e:
        PolicyContract.from_dict(d, where="c.json")
    assert str(e.value).startswith("c.json:") and words in str(e.value) and "\n" not in str(e.value)


def test_shipped_generator_carries_the_default_deployments_contract(ours, shared_dir):
    c = read_generator_contract(package_path("models", "go2-walk"))
    assert c is not None
    assert mismatch(ours, c) is None
    # the pretrained walk-these-ways run deploys with the same numbers (its Cfg lists more scales,
    # for terms the observation builder does not observe)
    # its students' module is recorded once (generator.json's adaptation_module) and joins the contract:
    # the pretrained walk-these-ways module is refused unless the controller is told to accept any
    assert c.adaptation_sha256 == ours.adaptation_sha256
    wtw = contract_of(load_robot_config("go2"), load_wtw_run(shared_dir / "wtw"))
    assert mismatch(wtw, c).startswith("policy contract field adaptation_sha256:")
    assert mismatch(dataclasses.replace(wtw, adaptation_sha256=""), c) is None  # accept_adaptation_mismatch
    assert mismatch(wtw, ours).startswith("policy contract field adaptation_sha256:")


def test_generator_folder_contract_file(ours, tmp_path):
    assert read_generator_contract(tmp_path) is None
    write_generator_contract(tmp_path, ours)
    assert read_generator_contract(tmp_path) == ours
    (tmp_path / CONTRACT_FILE).write_text("{not json")
    with pytest.raises(MaaError, match="not a readable JSON contract"):
        read_generator_contract(tmp_path)


def test_maa_info_prints_the_contract(ours, tmp_path):
    p = blob(ours, gid="info-1").save(tmp_path / "a.safetensors")
    for target, first in ((p, "actor"), (package_path("models", "go2-walk"), "generator")):
        r = subprocess.run([sys.executable, "-m", "maa_core", "info", str(target)], capture_output=True, text=True,
                           timeout=120, cwd=REPO)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(first) and "policy contract:" in r.stdout
        assert "joint_order          FL_hip FL_thigh" in r.stdout and "kp                   20" in r.stdout
    r = subprocess.run([sys.executable, "-m", "maa_core", "info", str(blob().save(tmp_path / "b.safetensors"))],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "policy contract: none" in r.stdout


# real-time loops, DDS and ROS graphs: one pytest-xdist worker runs all such files, in order (see Makefile)
pytestmark = pytest.mark.xdist_group("realtime")
