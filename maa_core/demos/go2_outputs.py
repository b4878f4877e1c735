"""What the Go2 demo leaves behind for a person to look at, from the observer's log of the walk:

    walk.mp4        MuJoCo's own rendering, a chase camera following the robot (go2/sim/render.py)
    walk_frame.png  the video's middle frame
    walk_path.png   top-down path of the base with heading arrows, the commanded path beside it
    walk.png        position / speed / trunk height over time
    walk_log.npz    the judged stretch of the log (t, pos, quat, q): what the video replays
    walk.gif        only when there can be no video: the matplotlib stick figure

A missing GL backend or encoder never stops the demo: `no_video` then says why, in one line.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..go2.sim.render import VideoConfig

LOG_KEYS = ("t", "pos", "quat", "q")


def straight_command(t: np.ndarray, speed: float | None) -> np.ndarray | None:
    """(N, 3) body-frame command rows (vx, vy, yaw rate): straight ahead at `speed` (the prompt's)."""
    if speed is None or not np.isfinite(speed):
        return None
    return np.tile([float(speed), 0.0, 0.0], (len(t), 1))


def write_walk_outputs(out_dir, log: dict, start: float, seconds: float, title: str,
                       command: np.ndarray | None = None, command_label: str = "commanded",
                       speed_target: float | None = None, video: VideoConfig = VideoConfig(),
                       gif_seconds: float = 4.0) -> dict:
    """Writes the files above for log[start, start + seconds] into out_dir. command: (N, 3) body-frame
    velocity commands at the log's rows in that stretch (None: no commanded path). Returns their paths
    and, when there is no video, `no_video` (the reason line)."""
    from ..go2.plots import commanded_path, write_gif, write_path_plot, write_plot
    from ..go2.sim.render import heading, render_walk_video

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = np.asarray(log["t"], dtype=float)
    sel = (t >= start) & (t <= start + seconds)
    z = {k: np.asarray(log[k])[sel] for k in LOG_KEYS}
    res: dict = {"plot": str(write_plot(out / "walk.png", z["t"], z["pos"], title, speed_target))}
    cmd_xy = None
    if command is not None and len(z["t"]):
        cmd_xy = commanded_path(z["t"], command, z["pos"][0], float(heading(z["quat"][:1])[0]))
    res["path_plot"] = str(write_path_plot(out / "walk_path.png", z["t"], z["pos"], z["quat"], title, cmd_xy,
                                           command_label=command_label))
    log_file = out / "walk_log.npz"
    np.savez_compressed(log_file, **z)
    t0 = time.time()
    v = render_walk_video(log_file, out / "walk.mp4", start, seconds, video, still=out / "walk_frame.png")
    res["video_s"] = round(time.time() - t0, 1)
    if v.path is not None:
        res.update(video=str(v.path), frame=v.stats.get("still"), video_stats=v.stats, no_video="")
        (out / "walk.gif").unlink(missing_ok=True)  # a stick figure of an earlier run would be stale
        return res
    res.update(video=None, frame=None, no_video=f"no video: {v.reason}")
    for stale in ("walk.mp4", "walk_frame.png"):
        (out / stale).unlink(missing_ok=True)
    poses = np.concatenate([z["pos"], z["quat"], z["q"]], axis=1)
    dt = float(np.median(np.diff(z["t"]))) if len(z["t"]) > 1 else 0.02
    res["gif"] = str(write_gif(out / "walk.gif", poses, dt, gif_seconds))
    return res


def write_recording_plots(rec, out_dir) -> dict:
    """The plots of a controller recording (go2/recording.py `Recording`) into out_dir:

        tracking.png   commanded vs achieved velocity and yaw rate, modes shaded
        walk_path.png  top-down path (only with ground-truth poses, /maa/record/pose: the simulator's),
                       the commanded path beside it

    Returns their paths; `no_path` says why there is no path plot."""
    from ..go2.plots import commanded_path, write_path_plot, write_tracking_plot
    from ..go2.sim.render import heading

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = f"{rec.path.name}: {len(rec.t)} ticks, {len(rec.transitions)} mode transitions"
    res = {"tracking": str(write_tracking_plot(out / "tracking.png", rec.t, rec.mode, rec.command, rec.quat, title,
                                               rec.pose_t, rec.pose_pos))}
    if len(rec.pose_t) == 0:
        res["no_path"] = "no walk_path.png: the recording has no ground-truth poses (/maa/record/pose)"
        return res
    # the command in force at each pose: the latest tick at or before it
    k = np.clip(np.searchsorted(rec.t, rec.pose_t, side="right") - 1, 0, len(rec.t) - 1)
    cmd_xy = commanded_path(rec.pose_t, rec.command[k], rec.pose_pos[0], float(heading(rec.pose_quat[:1])[0]))
    res["path"] = str(write_path_plot(out / "walk_path.png", rec.pose_t, rec.pose_pos, rec.pose_quat, title, cmd_xy))
    return res
