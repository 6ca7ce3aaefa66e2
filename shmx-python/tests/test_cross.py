"""Typed topics across real processes and languages: Python and Rust (`struct_peer`)
in both directions, Python and Python in two processes, a SIGKILLed Python subscriber
that held samples, and Ctrl-C ending a blocked `recv`."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import shmx
from robot import Robot, as_dict, expected, fill

HERE = os.path.dirname(os.path.abspath(__file__))
N = 50
DEADLINE = 20.0


def python_peer(*args):
    return subprocess.Popen([sys.executable, os.path.join(HERE, "py_peer.py"), *args],
                            stdout=subprocess.PIPE, text=True, cwd=HERE)


def finish(peer):
    out, _ = peer.communicate(timeout=DEADLINE)
    assert peer.returncode == 0, out
    return out


def test_the_python_type_is_the_rust_type(struct_peer):
    out = subprocess.run([struct_peer, "schema"], capture_output=True, text=True, check=True)
    schema, fingerprint = out.stdout.split()
    assert Robot.schema == schema
    assert Robot.fingerprint == int(fingerprint)


def test_python_publishes_a_struct_to_rust(root, struct_peer):
    peer = subprocess.Popen([struct_peer, "sub", "robot", str(N)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert peer.stdout.readline().strip() == "ready"
        pub = shmx.Publisher("robot", Robot, max_tail_bytes=1024, overflow="block")
        for i in range(1, N + 1):
            m = pub.loan(256)
            fill(m, i)
            pub.publish(m)
        lines = finish(peer).splitlines()
        assert [json.loads(line) for line in lines] == [expected(i) for i in range(1, N + 1)]
        del pub
    finally:
        peer.kill()


def test_rust_publishes_a_struct_to_python(root, struct_peer):
    # Python subscribes first with its declared type; the Rust publisher joins that topic.
    sub = shmx.Subscriber("robot", Robot)
    peer = subprocess.Popen([struct_peer, "pub", "robot", str(N)], stdout=subprocess.PIPE,
                            text=True)
    try:
        got = []
        for _ in range(N):
            s = sub.recv(DEADLINE)
            assert s is not None, "timed out"
            got.append(as_dict(s))
        assert got == [expected(i) for i in range(1, N + 1)]
        finish(peer)
    finally:
        peer.kill()
    del sub


def test_python_adopts_the_type_rust_made(root, struct_peer):
    peer = subprocess.Popen([struct_peer, "sub", "robot", "1"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert peer.stdout.readline().strip() == "ready"
        # No type given: the topic's stored schema is adopted, and Python can write it.
        pub = shmx.Publisher("robot", max_tail_bytes=1024)
        assert pub.schema == Robot.schema
        assert pub.type.fingerprint == Robot.fingerprint
        m = pub.loan(256)
        fill(m, 3)
        pub.publish(m)
        assert json.loads(finish(peer)) == expected(3)
        del pub
    finally:
        peer.kill()


def test_a_python_type_that_differs_from_rusts_is_a_type_mismatch_naming_both(root,
                                                                              struct_peer):
    peer = subprocess.Popen([struct_peer, "sub", "robot", "1"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert peer.stdout.readline().strip() == "ready"
        fields = list(Robot.fields)
        swapped = [(n, t) for n, _, t in fields]
        # Another order, another type, another name:
        variants = [
            [swapped[1], swapped[0]] + swapped[2:],
            [("seq", shmx.i64)] + swapped[1:],
            [("sequence", shmx.u64)] + swapped[1:],
        ]
        for fields in variants:
            try:
                Other = shmx.struct("Robot", fields)
            except shmx.InvalidSchema:
                continue  # the swap needs padding: no such Rust type either
            with pytest.raises(shmx.TypeMismatch) as e:
                shmx.Publisher("robot", Other)
            text = str(e.value)
            assert f"{Robot.fingerprint:#018x}" in text and f"{Other.fingerprint:#018x}" in text
            del e  # its traceback holds this frame (a cycle that would keep `pub` alive)
        pub = shmx.Publisher("robot", Robot, max_tail_bytes=1024, overflow="block")
        m = pub.loan(256)
        fill(m, 1)
        pub.publish(m)
        finish(peer)
        del m, pub
    finally:
        peer.kill()


def test_python_to_python_in_two_processes(root):
    sub = python_peer("sub", "robot", str(N))
    pub = python_peer("pub", "robot", str(N))
    try:
        assert sub.stdout.readline().strip() == "ready"
        lines = finish(sub).splitlines()
        assert [json.loads(line) for line in lines] == [expected(i) for i in range(1, N + 1)]
        finish(pub)
    finally:
        sub.kill()
        pub.kill()


def test_a_killed_python_subscriber_holding_samples_leaves_the_pool_whole(root):
    pub = shmx.Publisher("robot", Robot, 8, max_tail_bytes=1024, history=0)
    holder = python_peer("hold", "robot", "5")
    try:
        assert holder.stdout.readline().strip() == "ready"
        for i in range(1, 6):
            m = pub.loan(256)
            fill(m, i)
            pub.publish(m)
        assert holder.stdout.readline().strip() == "holding"
        assert pub.pool_stats()["delivered"] == 5
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=DEADLINE)
        deadline = time.monotonic() + DEADLINE
        while True:
            stats = pub.pool_stats()
            if pub.subscriber_count() == 0 and stats["delivered"] == 0:
                break
            assert time.monotonic() < deadline, stats
            time.sleep(0.01)
        assert stats["free"] == stats["total"] and stats["loaned"] == 0, stats
        # And the pool serves a new subscriber as before.
        sub = shmx.Subscriber("robot", Robot)
        m = pub.loan(256)
        fill(m, 9)
        pub.publish(m)
        assert as_dict(sub.recv(DEADLINE)) == expected(9)
        del sub
    finally:
        holder.kill()
    del pub


def test_ctrl_c_interrupts_a_blocked_recv(root):
    blocked = python_peer("block", "robot")
    try:
        assert blocked.stdout.readline().strip() == "waiting"
        # It is blocked in recv (no sample will come): SIGINT is Ctrl-C.
        time.sleep(0.2)
        blocked.send_signal(signal.SIGINT)
        out, _ = blocked.communicate(timeout=DEADLINE)
        assert blocked.returncode == 0, out
        assert out.strip() == "interrupted"
    finally:
        blocked.kill()
