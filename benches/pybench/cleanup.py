"""What a run of the Python benchmark may leave behind, and its removal: the live child
processes, the SharedMemory segments the parent created, the run's shmx root and its files in
/dev/shm. `_final_cleanup` runs at exit, on a signal and at the end of the run (in the parent
only).
"""

from __future__ import annotations

import os
import shutil

_PARENT_SEGMENTS = []  # SharedMemory segments the parent created for the current job
_LIVE_CHILDREN = []
_CLEANUP = {"base": None, "shm_before": None, "tag": None, "parent_pid": None}


def _kill_children():
    for p in list(_LIVE_CHILDREN):
        if p.is_alive():
            p.terminate()
    for p in list(_LIVE_CHILDREN):
        p.join(2)
        if p.is_alive():
            p.kill()
            p.join(2)
    _LIVE_CHILDREN.clear()


def _unlink_segments():
    for seg in _PARENT_SEGMENTS:
        try:
            seg.close()
        except Exception:
            pass
        try:
            seg.unlink()
        except FileNotFoundError:
            pass
        except Exception:
            pass
    _PARENT_SEGMENTS.clear()


def _final_cleanup():
    if _CLEANUP["parent_pid"] != os.getpid():
        return  # only the parent cleans up (a forked child inherits the atexit hook)
    _kill_children()
    _unlink_segments()
    base = _CLEANUP["base"]
    if base:
        shutil.rmtree(base, ignore_errors=True)
        _CLEANUP["base"] = None
    before = _CLEANUP["shm_before"]
    if before is not None:
        # Whatever this run created in /dev/shm: our segments (named after the run's tag) and
        # iceoryx2's files (iox2_*: it may leave its global management file behind).
        tag = _CLEANUP["tag"]
        for name in set(os.listdir("/dev/shm")) - before:
            if name.startswith("iox2_") or (tag and name.startswith(tag)):
                path = os.path.join("/dev/shm", name)
                try:
                    if os.path.isdir(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.unlink(path)
                except OSError:
                    pass
