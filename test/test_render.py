"""The demo's video: MuJoCo renders the Go2 offscreen from a chase camera (in this process with the
tests' MUJOCO_GL, and in the demo's child process with OSMesa), the MP4 reads back, and without a
backend the demo's outputs say why there is no video and fall back to the stick figure."""
import math

import numpy as np
import pytest

from maa_core.demos.go2_outputs import straight_command, write_walk_outputs
from maa_core.go2.config import load_robot_config
from maa_core.go2.plots import commanded_path
from maa_core.go2.sim.render import (NO_VIDEO_ENV, FrameRenderer, VideoConfig, chase_camera, frame_indices, log_qpos,
                                     render_walk_video)

FPS = 25.0


def arc_log(seconds: float = 2.0, rate: float = 50.0, speed: float = 1.0, yaw_rate: float = 0.8) -> dict:
    """An observer-style log of the Go2 in its stand pose gliding along an arc (a replay is kinematic:
    the renderer sees exactly what the observer logged)."""
    cfg = load_robot_config("go2")
    t = np.arange(0.0, seconds + 1e-9, 1.0 / rate) + 10.0
    yaw = yaw_rate * (t - t[0])
    r = speed / yaw_rate
    pos = np.stack([r * np.sin(yaw), r * (1 - np.cos(yaw)), np.full(len(t), 0.30)], axis=1)
    quat = np.stack([np.cos(yaw / 2), np.zeros(len(t)), np.zeros(len(t)), np.sin(yaw / 2)], axis=1)
    q = np.tile(np.asarray(cfg.stand_pose, dtype=float), (len(t), 1))
    return {"t": t, "pos": pos, "quat": quat, "q": q}


def robot_mask(fr: FrameRenderer, qpos, look, azim) -> np.ndarray:
    seg = fr.frame(qpos, look, azim, segmentation=True)
    geom = seg[..., 1] == int(fr.mj.mjtObj.mjOBJ_GEOM)
    ids = np.clip(seg[..., 0], 0, fr.model.ngeom - 1)
    return geom & (fr.model.geom_bodyid[ids] != 0)   # body 0 is the world (the floor)


def centroid_offset(mask: np.ndarray) -> float:
    """Distance of the mask's centroid from the image centre, as a fraction of the image diagonal."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    return math.hypot(xs.mean() - w / 2, ys.mean() - h / 2) / math.hypot(w, h)


def test_chase_camera_keeps_the_moving_robot_in_view():
    cfg = VideoConfig()
    log = arc_log(seconds=3.0)
    idx = frame_indices(log["t"], float(log["t"][0]), 3.0, FPS)
    qpos = log_qpos(log)[idx]
    look, azim = chase_camera(qpos, FPS, cfg)
    assert np.ptp(azim) > 60.0       # the camera turned with the robot (0.8 rad/s for 3 s = 138 deg)
    picks = [0, len(idx) // 2, len(idx) - 1]
    with FrameRenderer(cfg) as fr:
        rgb = [fr.frame(qpos[k], look[k], azim[k]) for k in picks]
        masks = [robot_mask(fr, qpos[k], look[k], azim[k]) for k in picks]
        # the last pose seen from the first frame's camera: the robot has left the centre (or the picture)
        still_cam = robot_mask(fr, qpos[-1], look[0], azim[0])
    for img in rgb:
        assert img.shape == (cfg.height, cfg.width, 3) and img.dtype == np.uint8
        assert img.std() > 15.0      # not blank: floor, sky and robot
    for m in masks:
        assert m.mean() > 0.02       # the robot covers a fair part of the picture (measured 0.034-0.057)
        assert centroid_offset(m) < 0.1  # near the centre (measured 0.03)
    assert np.abs(rgb[0].astype(int) - rgb[-1].astype(int)).mean() > 5.0   # the scene moved past the camera
    # not followed, the robot ends 3 m away (measured: 0.010 of the picture, 0.27 off centre)
    assert still_cam.mean() < 0.5 * min(m.mean() for m in masks) or centroid_offset(still_cam) > 0.2


def test_video_renders_with_osmesa_and_reads_back(tmp_path):
    import imageio.v2 as imageio

    log = arc_log(seconds=1.0)
    np.savez(tmp_path / "log.npz", **log)
    v = render_walk_video(tmp_path / "log.npz", tmp_path / "walk.mp4", float(log["t"][0]), 1.0,
                          VideoConfig(gl="osmesa"), still=tmp_path / "frame.png")
    assert v.path is not None, v.reason
    assert v.stats["frames"] == int(FPS) + 1                  # 0 .. 1 s at 25 fps
    with imageio.get_reader(str(v.path)) as r:
        frames = [f for f in r]
    assert len(frames) == v.stats["frames"]
    assert frames[0].shape == (240, 320, 3) and frames[0].std() > 15.0
    assert v.stats["bytes"] == v.path.stat().st_size < 200_000
    assert imageio.imread(tmp_path / "frame.png").shape == (240, 320, 3)


def test_commanded_path_integrates_body_frame_commands():
    t = np.linspace(0.0, math.pi, 2001)                       # half a circle at 1 rad/s
    xy = commanded_path(t, np.tile([0.5, 0.0, 1.0], (len(t), 1)), [1.0, 2.0], 0.0)
    assert np.allclose(xy[-1], [1.0, 3.0], atol=0.01)         # radius 0.5: ends 1 m to the left
    xy = commanded_path(t, np.tile([0.0, 0.3, 0.0], (len(t), 1)), [0.0, 0.0], math.pi / 2)
    assert np.allclose(xy[-1], [-0.3 * math.pi, 0.0], atol=0.01)   # sideways (+y body) while facing +y


@pytest.mark.parametrize("how", ["config", "env"])
def test_demo_outputs_without_a_video_backend_say_why(tmp_path, monkeypatch, how):
    log = arc_log(seconds=1.0)
    start = float(log["t"][0])
    video = VideoConfig(gl="off") if how == "config" else VideoConfig()
    if how == "env":
        monkeypatch.setenv(NO_VIDEO_ENV, "1")
    out = write_walk_outputs(tmp_path, log, start, 1.0, "no video", straight_command(log["t"], 1.0),
                             video=video, gif_seconds=0.5)
    assert out["video"] is None and not (tmp_path / "walk.mp4").exists()
    line = out["no_video"]
    assert line.startswith("no video: ") and "\n" not in line
    assert ("video.gl is 'off'" if how == "config" else NO_VIDEO_ENV) in line
    for k in ("gif", "path_plot", "plot"):                    # the demo still leaves its pictures
        assert (tmp_path / out[k].split("/")[-1]).stat().st_size > 1000


def test_a_backend_that_cannot_render_is_a_reason_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    log = arc_log(seconds=0.5)
    np.savez(tmp_path / "log.npz", **log)
    v = render_walk_video(tmp_path / "log.npz", tmp_path / "walk.mp4", float(log["t"][0]), 0.5,
                          VideoConfig(gl="glfw"))   # needs a display: there is none
    assert v.path is None and v.reason.startswith("rendering failed (")
    assert not (tmp_path / "walk.mp4").exists()
