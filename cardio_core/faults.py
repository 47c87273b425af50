"""Named points where a test can kill the process with SIGKILL (kill -9 at every stage).

`CARDIO_FAULT_AT=NAME` (or `NAME#N`: the N-th time the point is reached) makes `point(NAME)`
kill this process on the spot, exactly as an out-of-memory kill or a power cut would. Unset
(always, outside the tests), a point costs one dictionary lookup.

Points: `train_batch` (after a training batch), `checkpoint_written` (epoch_NNNN.pth renamed
into place, not yet registered), `analysis:embed`, `analysis:metrics`, `analysis:project:<view>`
(after each analysis step of one set of weights, before the next), `demo:step<k>` (the demo
chain entering step k).
"""
from __future__ import annotations

import os
import signal

ENV = "CARDIO_FAULT_AT"
_seen: dict[str, int] = {}


def point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    target, _, nth = wanted.partition("#")
    if target != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
