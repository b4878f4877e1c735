"""Video of a simulated Go2 walk, rendered by MuJoCo offscreen after the run.

The walk runs in the DDS bridge's process in real time; this never renders inside that loop. It
replays the observer's log (base position, IMU quaternion, joint angles: exactly qpos, because the
MJCF declares the joints in motor order) into a fresh MjModel/MjData and renders each frame from a
chase camera that follows the base and turns with the robot's heading (both smoothed, so the
picture does not shake with the gait). Frames are encoded as H.264 MP4 by imageio-ffmpeg, whose
wheel carries its own ffmpeg binary.

MuJoCo binds its GL backend (MUJOCO_GL) when it is first imported, so the demo renders in a child
process with the backend set (`render_walk_video`, default OSMesa: Debian's libosmesa6, software
rendering on the CPU). The same child as a command:

    python -m maa_core.go2.sim.render observer.npz walk.mp4 --start 3.1 --seconds 20 --still frame.png

`FrameRenderer` renders in this process with whatever backend mujoco loaded (tests set MUJOCO_GL)."""
from __future__ import annotations

import argparse
import ctypes.util
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...errors import MaaError, check
from ...files import dataclass_from_mapping

NO_VIDEO_ENV = "MAA_NO_VIDEO"   # set (non-empty): skip the video (the demo falls back to the stick figure)
GL_LIBRARIES = {"osmesa": "OSMesa", "egl": "EGL"}   # MUJOCO_GL value -> the shared library it loads


@dataclass(frozen=True)
class VideoConfig:
    gl: str = "osmesa"              # MUJOCO_GL of the rendering process: osmesa, egl, glfw; "off" = no video
    width: int = 320                # pixels; both multiples of 16 (H.264 macroblocks, no rescaling)
    height: int = 240
    fps: float = 25.0               # every 2nd sample of the observer's 50 Hz log
    distance: float = 1.5           # m from the camera to the point it looks at
    elevation_deg: float = -18.0    # camera pitch (negative looks down)
    azimuth_offset_deg: float = 40.0  # camera direction relative to the heading: 0 = straight behind
    look_height: float = 0.22       # m: the camera looks at this height above the base's ground point
    follow_s: float = 0.25          # time constant of the camera following the base position
    turn_s: float = 1.0             # time constant of the camera turning with the heading
    crf: int = 30                   # H.264 quality (higher = smaller file): ~40 kB/s at 320x240
    preset: str = "veryfast"        # x264 speed/size trade-off
    caption: bool = True            # time and forward speed in the top-left corner
    timeout_s: float = 300.0        # the rendering child is stopped after this long

    @classmethod
    def from_dict(cls, d: dict | None) -> "VideoConfig":
        return dataclass_from_mapping(cls, d, "video")


# -- what to show ---------------------------------------------------------------------------------
def log_qpos(log: dict) -> np.ndarray:
    """(N, 19) qpos rows from an observer log: base position, trunk quaternion (w, x, y, z), joint
    angles in motor order (the MJCF's joint order)."""
    return np.concatenate([np.asarray(log["pos"]), np.asarray(log["quat"]), np.asarray(log["q"])], axis=1)


def heading(quat: np.ndarray) -> np.ndarray:
    """Yaw (rad) of each (w, x, y, z) quaternion row."""
    w, x, y, z = np.asarray(quat, dtype=float).T
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def frame_indices(t: np.ndarray, start: float, seconds: float, fps: float) -> np.ndarray:
    """Log rows nearest to each frame time in [start, start + seconds] (the log's rate may jitter)."""
    t = np.asarray(t, dtype=float)
    check(len(t) > 0, "walk video: the log has no samples")
    end = min(start + seconds, float(t[-1]))
    times = np.arange(max(start, float(t[0])), end + 1e-9, 1.0 / fps)
    i = np.clip(np.searchsorted(t, times), 1, len(t) - 1)
    return np.where(np.abs(t[i - 1] - times) <= np.abs(t[i] - times), i - 1, i)


def _low_pass(x: np.ndarray, dt: float, tau: float) -> np.ndarray:
    """First-order filter along axis 0, started at the first row (no lag at the start)."""
    a = 1.0 - math.exp(-dt / tau) if tau > 0 else 1.0
    out = np.array(x, dtype=float)
    for k in range(1, len(out)):
        out[k] = out[k - 1] + a * (out[k] - out[k - 1])
    return out


def chase_camera(qpos: np.ndarray, fps: float, cfg: VideoConfig) -> tuple[np.ndarray, np.ndarray]:
    """(lookat (N, 3), azimuth in degrees (N,)) of a camera behind and beside the robot, for frames
    at `fps`: the base's ground point (smoothed) and the unwrapped heading (smoothed)."""
    dt = 1.0 / fps
    look = _low_pass(qpos[:, 0:3], dt, cfg.follow_s)
    look[:, 2] = cfg.look_height  # not the trunk's bounce: the horizon stays still
    yaw = _low_pass(np.unwrap(heading(qpos[:, 3:7])), dt, cfg.turn_s)
    return look, np.degrees(yaw) + cfg.azimuth_offset_deg


# -- frames ---------------------------------------------------------------------------------------
def render_model():
    """The sim's MJCF with a sky (the sim's model has none: the background would be black)."""
    import mujoco

    from .model import build_mjcf

    spec = mujoco.MjSpec.from_string(build_mjcf("go2"))
    spec.add_texture(name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX, builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
                     rgb1=[0.62, 0.74, 0.88], rgb2=[0.95, 0.96, 0.98], width=64, height=64)
    model = spec.compile()
    # software GL: shadows and multisampling cost 3-5x a plain frame; a drawn shadow disc stands in
    model.vis.quality.offsamples = 0
    model.vis.headlight.ambient[:] = 0.35
    model.vis.headlight.diffuse[:] = 0.55
    return model


class FrameRenderer:
    """Renders qpos rows from a chase camera, in this process (mujoco's loaded GL backend)."""

    SHADOW_RGBA = (0.0, 0.0, 0.0, 0.3)
    SHADOW_SIZE = (0.27, 0.15, 0.002)   # m: half-axes of the disc drawn under the trunk

    def __init__(self, cfg: VideoConfig = VideoConfig()):
        import mujoco

        self.mj, self.cfg = mujoco, cfg
        self.model = render_model()
        self.data = mujoco.MjData(self.model)
        try:
            self.renderer = mujoco.Renderer(self.model, height=cfg.height, width=cfg.width)
        except Exception as e:  # GL backends fail in many ways (missing library, no display, no device)
            msg = str(e).splitlines()[0] if str(e) else ""
            raise MaaError(f"MuJoCo cannot render with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')} "
                           f"({type(e).__name__}: {msg})") from None
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.distance, self.camera.elevation = cfg.distance, cfg.elevation_deg

    def frame(self, qpos: np.ndarray, lookat: np.ndarray, azimuth_deg: float, segmentation: bool = False) -> np.ndarray:
        """RGB (H, W, 3) uint8; segmentation=True: (H, W, 2) int32 (object id, object type) instead."""
        mj = self.mj
        self.data.qpos[:] = qpos
        mj.mj_forward(self.model, self.data)
        self.camera.lookat[:] = lookat
        self.camera.azimuth = azimuth_deg
        self.renderer.update_scene(self.data, self.camera)
        self._shadow(qpos)
        if segmentation:
            self.renderer.enable_segmentation_rendering()
            try:
                return self.renderer.render().copy()
            finally:
                self.renderer.disable_segmentation_rendering()
        return self.renderer.render().copy()

    def _shadow(self, qpos: np.ndarray) -> None:
        scene = self.renderer.scene
        if scene.ngeom >= scene.maxgeom:
            return
        yaw = float(heading(qpos[None, 3:7])[0])
        c, s = math.cos(yaw), math.sin(yaw)
        mat = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=float).ravel()
        self.mj.mjv_initGeom(scene.geoms[scene.ngeom], self.mj.mjtGeom.mjGEOM_ELLIPSOID, np.array(self.SHADOW_SIZE),
                             np.array([qpos[0], qpos[1], 0.003]), mat, np.array(self.SHADOW_RGBA, dtype=np.float32))
        scene.ngeom += 1

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> "FrameRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _caption(img: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = d.textbbox((3, 2), text)
    d.rectangle([0, 0, x1 + 3, y1 + 2], fill=(0, 0, 0))
    d.text((3, 2), text, fill=(255, 255, 255))
    return np.asarray(im)


# -- encoding -------------------------------------------------------------------------------------
def video_writer(path, cfg: VideoConfig):
    """An imageio writer of H.264 MP4 (yuv420p: plays in browsers and every player)."""
    import imageio.v2 as imageio
    try:
        import imageio_ffmpeg  # noqa: F401  (the writer needs its ffmpeg binary)
    except ImportError:
        raise MaaError("no video encoder: the Python package imageio-ffmpeg is not installed "
                       "(pip install -r requirements/go2.txt)") from None
    return imageio.get_writer(str(path), format="FFMPEG", mode="I", fps=cfg.fps, codec="libx264",
                              pixelformat="yuv420p", macro_block_size=16, quality=None,
                              ffmpeg_log_level="error", ffmpeg_params=["-crf", str(cfg.crf), "-preset", cfg.preset])


def render_video(log: dict, out, start: float, seconds: float, cfg: VideoConfig = VideoConfig(),
                 still=None) -> dict:
    """Renders the log's [start, start + seconds] into `out` (MP4) in this process; `still`: also
    write the middle frame there as PNG. Returns frames, ms per frame (render), bytes, seconds."""
    t = np.asarray(log["t"], dtype=float)
    idx = frame_indices(t, start, seconds, cfg.fps)
    qpos = log_qpos(log)[idx]
    check(np.isfinite(qpos).all(), "walk video: the log holds non-finite poses")
    look, azim = chase_camera(qpos, cfg.fps, cfg)
    speed = np.zeros(len(idx))
    if len(idx) > 2:  # along the heading, as the demo judges speed (not world x)
        yaw = heading(qpos[:, 3:7])
        vx, vy = (np.gradient(qpos[:, j], t[idx]) for j in (0, 1))
        speed = _low_pass(vx * np.cos(yaw) + vy * np.sin(yaw), 1.0 / cfg.fps, 0.5)
    render_s, mid = 0.0, len(idx) // 2
    out = Path(out)
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    writer = video_writer(tmp, cfg)
    done = False
    try:
        with FrameRenderer(cfg) as fr:
            for k in range(len(idx)):
                t0 = time.perf_counter()
                img = fr.frame(qpos[k], look[k], azim[k])
                render_s += time.perf_counter() - t0
                if cfg.caption:
                    img = _caption(img, f"t {t[idx[k]] - start:4.1f} s  forward {speed[k]:+.2f} m/s")
                writer.append_data(img)
                if still is not None and k == mid:
                    from PIL import Image
                    Image.fromarray(img).save(still, optimize=True)
        done = True
    finally:
        writer.close()
        if not done:
            tmp.unlink(missing_ok=True)
    os.replace(tmp, out)
    return {"path": str(out), "frames": len(idx), "ms_per_frame": round(1e3 * render_s / max(len(idx), 1), 1),
            "bytes": out.stat().st_size, "seconds": round(len(idx) / cfg.fps, 2),
            "still": str(still) if still is not None else None}


# -- the rendering child --------------------------------------------------------------------------
def backend_problem(cfg: VideoConfig) -> str | None:
    """Why there can be no video, found without rendering (None: try it)."""
    if os.environ.get(NO_VIDEO_ENV):
        return f"{NO_VIDEO_ENV} is set"
    if cfg.gl in ("off", "", "disable", "disabled"):
        return f"video.gl is {cfg.gl!r}"
    lib = GL_LIBRARIES.get(cfg.gl)
    if lib and ctypes.util.find_library(lib) is None:
        pkg = {"osmesa": "libosmesa6", "egl": "libegl1 + libegl-mesa0"}[cfg.gl]
        return f"MUJOCO_GL={cfg.gl} needs lib{lib}, which is not installed (Debian package {pkg}; scripts/setup.sh)"
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return "no video encoder: the Python package imageio-ffmpeg is not installed (pip install -r requirements/go2.txt)"
    return None


@dataclass
class VideoResult:
    path: Path | None               # the MP4, or None
    reason: str = ""                # why there is no video (path None)
    stats: dict | None = None       # render_video's figures


def render_walk_video(log_file, out, start: float, seconds: float, cfg: VideoConfig = VideoConfig(),
                      still=None) -> VideoResult:
    """Renders an observer log (.npz) to `out` in a child process with MUJOCO_GL=cfg.gl. Never raises
    for a missing backend or encoder: the result then says why there is no video."""
    problem = backend_problem(cfg)
    if problem is not None:
        return VideoResult(None, problem)
    env = {**os.environ, "MUJOCO_GL": cfg.gl}
    if cfg.gl in GL_LIBRARIES:
        env["PYOPENGL_PLATFORM"] = cfg.gl
    cmd = [sys.executable, "-m", "maa_core.go2.sim.render", str(log_file), str(out), "--start", repr(float(start)),
           "--seconds", repr(float(seconds)), "--config", json.dumps(asdict(cfg))]
    if still is not None:
        cmd += ["--still", str(still)]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=cfg.timeout_s)
    except subprocess.TimeoutExpired:
        return VideoResult(None, f"rendering took longer than {cfg.timeout_s:.0f} s (video.timeout_s)")
    if p.returncode != 0:
        lines = [ln for ln in (p.stderr or "").splitlines() if ln.strip()]
        err = next((ln for ln in reversed(lines) if ln.startswith("maa: error:")), lines[-1] if lines else "")
        return VideoResult(None, f"rendering failed ({err.removeprefix('maa: error: ') or f'exit {p.returncode}'})")
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    return VideoResult(Path(stats["path"]), "", stats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m maa_core.go2.sim.render", description=__doc__.splitlines()[0])
    ap.add_argument("log", help="observer log (.npz: t, pos, quat, q)")
    ap.add_argument("out", help="MP4 to write")
    ap.add_argument("--start", type=float, default=None, help="sim time of the first frame (default: the log's first)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--config", default="{}", help="VideoConfig fields as JSON")
    ap.add_argument("--still", default=None, help="also write the middle frame as PNG here")
    a = ap.parse_args(argv)
    try:
        cfg = VideoConfig.from_dict(json.loads(a.config))
        check(Path(a.log).is_file(), f"{a.log}: no such observer log")
        with np.load(a.log) as z:
            log = {k: z[k] for k in ("t", "pos", "quat", "q")}
        start = float(log["t"][0]) if a.start is None else a.start
        stats = render_video(log, a.out, start, a.seconds, cfg, a.still)
    except (MaaError, KeyError) as e:
        msg = str(e) if str(e).startswith(a.log) else f"{a.log}: {e}"
        print(f"maa: error: {msg}", file=sys.stderr)
        return 2
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
