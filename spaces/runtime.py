"""Waiting for a Space to run the new build, or to fail (used by ``spaces/build.py``; spaces/ is no package)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from huggingface_hub import HfApi, SpaceRuntime, SpaceStage

logger = logging.getLogger("spaces.build")

FAILED_STAGES = (
    SpaceStage.BUILD_ERROR,
    SpaceStage.RUNTIME_ERROR,
    SpaceStage.CONFIG_ERROR,
    SpaceStage.NO_APP_FILE,
    SpaceStage.STOPPED,
    SpaceStage.PAUSED,
    SpaceStage.DELETING,
)


def wait_for_space(
    api: HfApi,
    space_id: str,
    token: str,
    timeout: float,
    poll: float = 15.0,
    settle: float = 90.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SpaceRuntime:
    """Poll until the Space runs the new build or fails; raise TimeoutError after ``timeout`` seconds.

    Right after an upload, the runtime may still report the previous build as RUNNING: RUNNING counts
    once a build stage was seen, or after ``settle`` seconds (an upload that changed nothing rebuilds nothing).
    """
    start = clock()
    building = False
    while True:
        sleep(poll)
        runtime = api.get_space_runtime(space_id, token=token)
        elapsed = clock() - start
        logger.info("Space %s: %s after %.0f s", space_id, runtime.stage, elapsed)
        if runtime.stage in FAILED_STAGES:
            return runtime
        if runtime.stage == SpaceStage.RUNNING and (building or elapsed >= settle):
            return runtime
        building = building or runtime.stage != SpaceStage.RUNNING
        if elapsed >= timeout:
            raise TimeoutError(f"Space {space_id} still {runtime.stage} after {timeout:.0f} s")
