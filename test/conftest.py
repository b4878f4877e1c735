"""Shared test fixtures. Tests use real middleware and simulators, isolated per test session."""
import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# ROS 2: keep discovery on this machine and away from other test runs
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 29)))
os.environ.setdefault("MUJOCO_GL", "egl")
# Tests start several processes at once (nodes, simulator, controller) on a 2-core machine:
# one intra-op thread each avoids OpenMP spin-waiting against each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"{SHARED} (../shared beside the repo) is required by the tests"
    return SHARED


# `make test` runs two pytest workers (pytest-xdist, --dist loadgroup). The learning tests use one
# thread each, so a second worker roughly halves them on 2 cores. Everything that starts real-time
# loops, DDS participants or ROS graphs stays on one worker, in file order as a serial run has it:
# their domains are chosen per process, and their ticks must not compete with a second graph.
# Other files stay whole on one worker (their module fixtures are built once), except those whose
# tests share nothing costly: those spread test by test.
REALTIME_MODULES = {
    "test_go2_controller", "test_go2_dds", "test_ros_go2", "test_ros_graph", "test_ros_launch",
    "test_ros_units", "test_validator_robustness", "test_contract", "test_signing", "test_go2_recording",
}
SPREAD_MODULES = {"test_learning", "test_train_pairing", "test_collect", "test_adaptation"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.module.__name__.rsplit(".", 1)[-1]
        if name in REALTIME_MODULES:
            item.add_marker(pytest.mark.xdist_group("realtime"))
        elif name not in SPREAD_MODULES:
            item.add_marker(pytest.mark.xdist_group(name))
