"""The table of the Python benchmark's contenders: name -> how to open it, what the parent
makes for it, which payloads it runs, what it needs to import.
"""

from __future__ import annotations

from .common import PAYLOAD_ORDER
from .contenders_iox2 import iox2_open
from .contenders_shmx import shmx_main_open, shmx_spin_open, shmx_tail_open
from .contenders_stdlib import pipe_open, pipe_shared, shm_open, shm_shared, uds_open, uds_shared

# ---------------------------------------------------------------------------------------
# Contenders
# ---------------------------------------------------------------------------------------

# name -> (open, shared-maker or None, payloads, requirement)
CONTENDERS = {
    "shmx": (shmx_main_open, None, PAYLOAD_ORDER, "shmx"),
    "shmx, spinning receiver": (shmx_spin_open, None, PAYLOAD_ORDER, "shmx"),
    "shmx, frame copied in": (shmx_tail_open, None, ["6MB"], "shmx"),
    "iceoryx2": (iox2_open, None, PAYLOAD_ORDER, "iceoryx2"),
    "mp.shared_memory + Lock": (shm_open, shm_shared, PAYLOAD_ORDER, None),
    "mp.Pipe": (pipe_open, pipe_shared, PAYLOAD_ORDER, None),
    "Unix socket": (uds_open, uds_shared, PAYLOAD_ORDER, None),
}
CONTENDER_ORDER = list(CONTENDERS)
