"""Shows the frames of the Rust camera example (`examples/camera.rs`) as numpy arrays: each
1920x1080 RGB frame is a view of the shared chunk the Rust publisher wrote it into, never a
copy, and the script checks every frame's checksum against its pixels.

    cargo build --release --example camera
    target/release/examples/camera publisher cam --count 300 --fps 30    # terminal 1
    python examples/python/camera_view.py cam --count 300                # terminal 2

The topic's type is adopted from the topic (no Python declaration): `frame.pixels` is a
read-only `uint8` array over the shared memory, `frame.label` a `str`, the rest numbers.
"""

import argparse
import statistics
import sys
import time

import numpy as np

import shmx


def open_topic(topic, timeout=10.0):
    """Subscribes once the publisher made the topic (its type is adopted from it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            # Queue depth 4: the camera topic allows no more.
            return shmx.Subscriber(topic, None, 4)
        except shmx.Io:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topic")
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()

    sub = open_topic(args.topic)
    print(f"subscribed to {args.topic!r}: {sub.schema}", flush=True)
    latencies, bad = [], 0
    for n in range(args.count):
        frame = sub.recv(10.0)
        if frame is None:
            sys.exit("no frame within 10 s")
        received = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        image = frame.pixels.reshape(frame.height, frame.width, 3)  # a view: no copy
        # The publisher's checksum: the wrapping sum of the pixels as little-endian u64s.
        checksum = int(frame.pixels.view("<u8").sum(dtype=np.uint64))
        bad += checksum != frame.checksum
        latencies.append((received - frame.sent_ns) / 1000)
        if n % 30 == 0 or n == args.count - 1:
            mean = image.mean(axis=(0, 1))
            print(f"{frame.label}: {image.shape} {image.dtype}, mean RGB "
                  f"({mean[0]:.1f}, {mean[1]:.1f}, {mean[2]:.1f}), checksum "
                  f"{'ok' if checksum == frame.checksum else 'BAD'}, "
                  f"{latencies[-1]:.0f} µs after publish", flush=True)
        # The topic lets a subscriber hold one frame: let go of it before the next.
        del image, frame
    print(f"{args.count} frames, {bad} bad checksums, median latency "
          f"{statistics.median(latencies):.0f} µs", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
