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
