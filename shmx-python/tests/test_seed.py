"""The seed's API: bool, int and float topics, the same topics as Rust's."""

import subprocess

import pytest

import shmx

WAIT = 10


def test_subscribe_returns_the_next_value_or_the_last_with_false(root):
    pub = shmx.Publisher("temperature", 0.0, 5)
    sub = shmx.Subscriber("temperature", 0.0)
    assert sub.subscribe() == (0.0, False)
    pub.publish(21.5)
    pub.publish(3)  # an int is a float here
    assert sub.subscribe() == (21.5, True)
    assert sub.subscribe() == (3.0, True)
    assert sub.subscribe() == (3.0, False)
    del pub, sub


@pytest.mark.parametrize(
    "default, values",
    [(False, [True, False, True]), (0, [1, -2, 2**62]), (0.0, [0.5, -1e300])],
)
def test_each_type_round_trips(root, default, values):
    pub = shmx.Publisher("t", default, 8)
    sub = shmx.Subscriber("t", default)
    for v in values:
        pub.publish(v)
    got = [sub.subscribe() for _ in values]
    assert got == [(v, True) for v in values]
    assert all(type(v) is type(default) for v, _ in got)
    del pub, sub


def test_a_late_subscriber_gets_the_last_value_first(root):
    pub = shmx.Publisher("late", 0, 4)
    pub.publish(7)
    pub.publish(8)
    sub = shmx.Subscriber("late", 0)
    assert sub.subscribe() == (8, True)
    del pub, sub


def test_wrong_types_are_type_errors_and_mismatches_are_shmx_errors(root):
    pub = shmx.Publisher("typed", 0.0, 4)
    with pytest.raises(TypeError, match="float values, not str"):
        pub.publish("hot")
    with pytest.raises(TypeError):
        pub.publish(True)
    with pytest.raises(TypeError, match="bool, an int or a float"):
        shmx.Publisher("other", [1.0], 4)
    with pytest.raises(shmx.InvalidSchema):
        shmx.Publisher("other", "text", 4)
    with pytest.raises(shmx.TypeMismatch) as e:
        shmx.Subscriber("typed", 0)
    assert isinstance(e.value, shmx.Error)
    assert "f64" in str(e.value) and "i64" in str(e.value)
    with pytest.raises(shmx.InvalidName):
        shmx.Subscriber("", 0)
    del pub


def test_python_publishes_to_a_rust_subscriber(root, rust_peer):
    peer = subprocess.Popen(
        [rust_peer, "sub", "f64", "temperature", "3"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert peer.stdout.readline().strip() == "ready"
        pub = shmx.Publisher("temperature", 0.0, 5)
        for v in [21.5, -3.25, 1e10]:
            pub.publish(v)
        out, _ = peer.communicate(timeout=WAIT)
        assert [float(x) for x in out.split()] == [21.5, -3.25, 1e10]
        assert peer.returncode == 0
        del pub
    finally:
        peer.kill()


def test_a_rust_publisher_reaches_a_python_subscriber(root, rust_peer):
    sub = shmx.Subscriber("count", 0)
    peer = subprocess.Popen([rust_peer, "pub", "i64", "count", "5", "-6", "7"])
    try:
        got = []
        import time

        deadline = time.monotonic() + WAIT
        while len(got) < 3 and time.monotonic() < deadline:
            value, ok = sub.subscribe()
            if ok:
                got.append(value)
        assert got == [5, -6, 7]
        assert peer.wait(timeout=WAIT) == 0
    finally:
        peer.kill()
    del sub


def test_buffer_num_is_the_queue_depth_that_decides(root):
    sub = shmx.Subscriber("deep", 0)
    pub = shmx.Publisher("deep", 0, 64)
    for i in range(50):
        pub.publish(i)
    assert [sub.recv(0) for _ in range(50)] == list(range(50))
    assert sub.recv(0) is None
    del sub, pub
