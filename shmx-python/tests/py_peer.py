"""A Python process for the two-process tests: run as `python py_peer.py ROLE TOPIC [N]`.

- `sub TOPIC N`: prints `ready`, then each of N `Robot` samples as a JSON line;
- `pub TOPIC N`: waits for a subscriber, publishes samples 1..N, stays until they are taken;
- `hold TOPIC K`: takes K samples and keeps them (and a numpy view of each), prints
  `holding`, then waits to be killed;
- `block TOPIC`: prints `waiting`, then blocks in `recv()` with no timeout; prints
  `interrupted` when Ctrl-C (SIGINT) ends it.

Every wait is bounded (10 s) except the ones meant to be interrupted or killed.
"""

import json
import sys
import time

import shmx
from robot import Robot, as_dict, fill

WAIT = 10.0


def main():
    role, topic = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if role == "sub":
        sub = shmx.Subscriber(topic, Robot)
        print("ready", flush=True)
        for _ in range(n):
            s = sub.recv(WAIT)
            if s is None:
                sys.exit("timed out")
            print(json.dumps(as_dict(s)), flush=True)
    elif role == "pub":
        pub = shmx.Publisher(topic, Robot, max_tail_bytes=1024, overflow="block")
        deadline = time.monotonic() + WAIT
        while pub.subscriber_count() == 0:
            if time.monotonic() > deadline:
                sys.exit("no subscriber came")
            time.sleep(0.001)
        for i in range(1, n + 1):
            m = pub.loan(256)
            fill(m, i)
            pub.publish(m)
        while pub.pool_stats()["delivered"] > 0 and time.monotonic() < deadline:
            time.sleep(0.001)
    elif role == "hold":
        sub = shmx.Subscriber(topic, Robot)
        print("ready", flush=True)
        held = []
        while len(held) < n:
            s = sub.recv(WAIT)
            if s is None:
                sys.exit("timed out")
            held.append((s, s.values))
        print("holding", flush=True)
        time.sleep(3600)
    elif role == "block":
        sub = shmx.Subscriber(topic, Robot)
        print("waiting", flush=True)
        try:
            sub.recv()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            return
        sys.exit("recv returned without Ctrl-C")
    else:
        sys.exit(f"unknown role {role}")


if __name__ == "__main__":
    main()
