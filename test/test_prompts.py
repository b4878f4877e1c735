"""Prompt codec (trajectory <-> Float32MultiArray layout) and rosbag read/write. No ROS needed."""
import numpy as np
import pytest

from maa_core import prompts
from maa_core.errors import MaaError
from maa_core.trajectory import Trajectory


def traj(T=12, obs=5, act=2, success=True, seed=0):
    r = np.random.default_rng(seed)
    return Trajectory(r.normal(size=(T, obs)), r.normal(size=(T, act)), (np.arange(T) >= T // 2) if success else None)


class Dim:
    def __init__(self, label="", size=0, stride=0):
        self.label, self.size, self.stride = label, size, stride


class Layout:
    def __init__(self):
        self.dim, self.data_offset = [], 0


class Msg:  # duck-typed Float32MultiArray
    def __init__(self):
        self.layout, self.data = Layout(), None


def same(a: Trajectory, b: Trajectory) -> bool:
    return (np.array_equal(a.states, b.states) and np.array_equal(a.actions, b.actions)
            and (a.success is None) == (b.success is None)
            and (a.success is None or np.array_equal(a.success, b.success)))


@pytest.mark.parametrize("success", [True, False])
def test_layout_names_the_parts_and_round_trips(success):
    t = traj(success=success)
    msg = prompts.to_message(t, Msg, Dim)
    dims = [(d.label, d.size, d.stride) for d in msg.layout.dim]
    w = 5 + 2 + int(success)
    assert dims == [("T", 12, 12 * w), ("state", 5, w), ("action", 2, w), ("success", int(success), w)]
    assert msg.data.dtype == np.float32 and msg.data.shape == (12 * w,)
    assert np.array_equal(msg.data.reshape(12, w)[:, :5], t.states)  # rows are [state | action | success]
    assert same(prompts.from_message(msg), t)
    assert prompts.prompt_id(prompts.from_message(msg)) == prompts.prompt_id(t)


def bad_messages():
    def edit(fn):
        m = prompts.to_message(traj(), Msg, Dim)
        fn(m)
        return m

    def nan(m):
        m.data = m.data.copy()
        m.data[3] = np.nan
    return {
        "labels": (edit(lambda m: setattr(m.layout.dim[1], "label", "obs")), "labels"),
        "truncated": (edit(lambda m: setattr(m, "data", m.data[:-1])), "values, layout says"),
        "strides": (edit(lambda m: setattr(m.layout.dim[0], "stride", 3)), "strides"),
        "nan": (edit(nan), "NaN"),
        "success": (edit(lambda m: m.data.__setitem__(7, 0.5)), "success column"),
        "offset": (edit(lambda m: setattr(m.layout, "data_offset", 2)), "data_offset"),
        "empty": (edit(lambda m: setattr(m.layout, "dim", [])), "labels"),
        "not a message": (object(), "not a Float32MultiArray"),
    }


@pytest.mark.parametrize("case", list(bad_messages()))
def test_malformed_prompt_messages_raise_one_line_errors(case):
    msg, words = bad_messages()[case]
    with pytest.raises(MaaError, match=words) as e:
        prompts.from_message(msg)
    assert "\n" not in str(e.value)


def test_oversized_prompt_is_refused_before_decoding():
    msg = prompts.to_message(traj(T=100), Msg, Dim)
    with pytest.raises(MaaError, match="exceeds the limit"):
        prompts.from_message(msg, max_values=500)


def test_windower_cuts_windows_with_stride():
    w = prompts.Windower(4, stride=2)
    t = traj(T=9)
    out = [x for i in range(9) for x in w.push(Trajectory(t.states[i:i + 1], t.actions[i:i + 1], t.success[i:i + 1]))]
    assert [len(x) for x in out] == [4, 4, 4]  # ends at steps 4, 6, 8
    assert np.array_equal(out[1].states, t.states[2:6]) and np.array_equal(out[2].success, t.success[4:8])
    # a chunk of several steps at once gives the same windows
    assert all(same(a, b) for a, b in zip(out, list(prompts.Windower(4, 2).push(t))))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_round_trip_is_exact(tmp_path, storage):
    items = [traj(seed=0), traj(T=30, success=False, seed=1), traj(T=1, obs=3, act=1, seed=2)]
    prompts.write_prompts_to_bag(tmp_path / "bag", items, storage=storage)
    got = prompts.read_prompts_from_bag(tmp_path / "bag")
    assert len(got) == 3
    for t, (pid, g) in zip(items, got):
        assert same(t, g) and pid == prompts.prompt_id(t)
    # read output can be written again unchanged
    prompts.write_prompts_to_bag(tmp_path / "again", got, topic="/other", storage=storage)
    assert [p for p, _ in prompts.read_prompts_from_bag(tmp_path / "again", topic="/other")] == [p for p, _ in got]


def test_bag_windows_and_errors(tmp_path):
    t = traj(T=10)
    steps = [Trajectory(t.states[i:i + 1], t.actions[i:i + 1], t.success[i:i + 1]) for i in range(10)]
    prompts.write_prompts_to_bag(tmp_path / "steps", steps, topic="/maa/go2/steps")
    win = prompts.read_prompts_from_bag(tmp_path / "steps", window=5)
    assert len(win) == 2 and same(win[1][1], Trajectory(t.states[5:], t.actions[5:], t.success[5:]))
    with pytest.raises(MaaError, match="no std_msgs/msg/Float32MultiArray messages on /nope"):
        prompts.read_prompts_from_bag(tmp_path / "steps", topic="/nope")
    with pytest.raises(MaaError, match="no such bag"):
        prompts.read_prompts_from_bag(tmp_path / "missing")
    with pytest.raises(MaaError, match="exists already"):
        prompts.write_prompts_to_bag(tmp_path / "steps", steps)
    with pytest.raises(MaaError, match="storage"):
        prompts.write_prompts_to_bag(tmp_path / "x", steps, storage="rosbag1")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("not: [a bag")
    with pytest.raises(MaaError, match="cannot read bag"):
        prompts.read_prompts_from_bag(tmp_path / "junk")
