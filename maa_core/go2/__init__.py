"""Go2 deployment core (ROS-free): robot constants, joint-order mapping, walk-these-ways composition,
DDS robot interface, safety supervisor, hot-swapping controller; simulator in `maa_core.go2.sim`.

Typical use (see docs/go2.md):
    cfg = load_robot_config("go2")
    robot = Go2DdsRobot(cfg, domain=1, interface="lo", release_sport_mode=False).open()
    ctl = Controller(cfg, robot, load_wtw_run()  # models/go2-adaptation; or a WTW run dir).start()
    ctl.submit_actor(ActorBlob.load("actor.safetensors")).wait(5); ctl.enable()
"""
# Lazy exports: `maa_core.go2.sim.bridge` and the CLI import this package without paying for torch.
_EXPORTS = {"RobotConfig": "config", "load_robot_config": "config", "Controller": "controller",
            "ControllerEvent": "telemetry", "SwapResult": "swap", "SwapTicket": "swap",
            "TickRecord": "telemetry", "Go2DdsRobot": "dds", "JointMap": "joints", "Mode": "safety",
            "WtwConfig": "wtw", "WtwRun": "wtw", "load_wtw_run": "wtw"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)
