"""maa plot: the tracking and path plots of a Go2 controller recording (.mcap)."""
from pathlib import Path


def add_parser(sub, name):
    p = sub.add_parser(name, help="plot a Go2 controller recording (tracking, path)",
                       description="Plots of a recording written by the Go2 controller (docs/go2.md, Recording): "
                                   "commanded vs achieved velocity and yaw rate, and the path when it holds poses.")
    p.add_argument("--bag", type=Path, required=True, help="the recording (.mcap file)")
    p.add_argument("--out", type=Path, required=True, help="folder for tracking.png and walk_path.png")
    return p


def run(args):
    from ..demos.go2_outputs import write_recording_plots
    from ..go2.recording import read_recording
    from .common import out_dir

    out_dir(args.out)
    rec = read_recording(args.bag)
    res = write_recording_plots(rec, args.out)
    for key in ("tracking", "path"):
        if key in res:
            print(res[key])
    if "no_path" in res:
        print(res["no_path"])
