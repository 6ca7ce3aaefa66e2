"""The seed's temperature example, in shmx: a Python publisher of `float` readings that a
Rust `Subscriber<f64>` (`cargo run --example temperature`) or a Python one receives.

    cargo run --example temperature              # terminal 1 (Rust subscriber)
    python examples/python/temperature.py        # terminal 2 (this publisher)

`Publisher("temperature", 0.0, 5)`: the topic's name, a default value that gives its type
(a Python float is Rust's f64) and `buffer_num` 5, the queue depth: a subscriber may have
five readings waiting before the oldest is dropped. The last reading is kept as history,
so a subscriber that starts later gets it first.
"""

import argparse
import math
import time

import shmx


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10, help="readings to publish")
    parser.add_argument("--rate", type=float, default=10.0, help="readings per second")
    args = parser.parse_args()

    pub = shmx.Publisher("temperature", 0.0, 5)
    for i in range(args.count):
        reading = round(21.5 + 2.0 * math.sin(i / 3.0), 2)
        pub.publish(reading)
        print(f"published {reading:.1f} °C", flush=True)
        time.sleep(1.0 / args.rate)

    # The seed's receiving side, in Python: the last value and whether it is new.
    sub = shmx.Subscriber("temperature", 0.0)
    value, ok = sub.subscribe()
    print(f"a late subscriber gets the last reading as history: {value:.1f} °C ({ok})")


if __name__ == "__main__":
    main()
