"""Payloads and the endpoint interface of the Python benchmark (`benches/python_bench.py`).

The three payloads, their sizes and iteration counts, the frame a producer sends and the pixel
its receiver checks, the delivery errors, and `Endpoint`: the object each contender gives each
of the two processes of a measurement.
"""

from __future__ import annotations

import struct

# ---------------------------------------------------------------------------------------
# Payloads
# ---------------------------------------------------------------------------------------

FRAME_SHAPE = (1080, 1920, 3)
FRAME_BYTES = 1080 * 1920 * 3  # 6,220,800
KIB_DATA = 1024 - 8

# name -> message size in bytes (a u64 sequence number and the body; the float is 8 bytes,
# its value being the sequence number)
PAYLOADS = {"float": 8, "1KiB": 1024, "6MB": 8 + FRAME_BYTES}
PAYLOAD_ORDER = ["float", "1KiB", "6MB"]

# Iteration counts: (warm-up round trips, measured round trips, throughput messages)
COUNTS_FULL = {"float": (2000, 20000, 200000), "1KiB": (2000, 20000, 200000), "6MB": (20, 200, 300)}
COUNTS_QUICK = {"float": (100, 300, 3000), "1KiB": (100, 300, 3000), "6MB": (5, 30, 30)}

_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")
_U32 = struct.Struct("<I")


def frame_pattern():
    """The prepared 1080x1920x3 frame a producer sends: byte k is k % 251."""
    import numpy as np

    return (np.arange(FRAME_BYTES, dtype=np.uint32) % 251).astype(np.uint8).reshape(FRAME_SHAPE)


def pixel_index(seq):
    """The flat index of the pixel a frame's receiver checks for message `seq`."""
    return (seq * 7919 + 13) % FRAME_BYTES


class DeliveryError(Exception):
    """A message arrived out of order, or with the wrong content."""


def bad_seq(got, want):
    raise DeliveryError(f"sequence {got!r} received, {want} expected")


def bad_pixel(seq, got):
    k = pixel_index(seq)
    raise DeliveryError(f"message {seq}: pixel {k} is {got}, {k % 251} expected")


# ---------------------------------------------------------------------------------------
# Endpoints: each contender gives each of the two processes an object with
#   send(seq)      sends one message on this side's outgoing channel (the driver's ping,
#                  the peer's pong), written as a producer would
#   recv() -> seq  blocks for the next message on the incoming channel, reads it as a
#                  consumer would, returns its sequence number
#   tsend / trecv  the same for the throughput stream (driver -> peer); default send/recv
#   window         None when tsend blocks by itself when the receiver is behind (lossless
#                  transports); otherwise the channel drops on overflow and the driver may
#                  run at most `window` messages ahead of the last acknowledgement
#   ack(n) / wait_ack() -> n   the peer's acknowledgements of throughput messages, and the
#                  driver's blocking wait for the next one (only when window is set)
#   close()
# ---------------------------------------------------------------------------------------


class Endpoint:
    window = None
    ack_every = 0

    def __init__(self):
        self.tsend = None
        self.trecv = None

    def close(self):
        pass

