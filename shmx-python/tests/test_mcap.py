"""Recordings of `shmx record` read by an independent reader, the `mcap` package of the
package index: the sensor network example (four topics, four types, the lidar's ranges a
`RelSlice<f32>` in each sample's tail) recorded, then checked channel by channel, schema by
schema and message by message against what the recorder says it wrote; and its JSON export
read with field names."""

import json
import os
import signal
import struct
import subprocess
import time

from mcap.reader import make_reader

DEADLINE = 60
# Bytes of each type (the schema's size) and, for the lidar, of its ranges in the tail.
SIZES = {"CameraFrame": 3096, "Command": 32, "Imu": 40, "LidarScan": 32 + 360 * 4}


def record_sensor_network(shmx_tool, rust_example, path):
    """Runs the sensor network for one second under `shmx record`; the recorder's summary."""
    rec = subprocess.Popen(
        [shmx_tool, "record", "examples/sensor_network/**", "-o", str(path), "--json"],
        stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + DEADLINE
        while not path.exists():
            assert time.monotonic() < deadline, "shmx record did not create its file"
            time.sleep(0.01)
        run = subprocess.run([rust_example("sensor_network"), "--seconds", "1"],
                             capture_output=True, text=True, timeout=DEADLINE)
        assert run.returncode == 0, run.stdout + run.stderr
        rec.send_signal(signal.SIGINT)
        out, _ = rec.communicate(timeout=DEADLINE)
        assert rec.returncode == 0, out
        return json.loads(out)
    finally:
        rec.kill()


def test_the_mcap_package_reads_what_shmx_recorded(root, shmx_tool, rust_example, tmp_path):
    path = tmp_path / "sensors.mcap"
    summary = record_sensor_network(shmx_tool, rust_example, path)
    recorded = {t["topic"]: t for t in summary["topics"]}
    assert len(recorded) == 4
    with open(path, "rb") as f:
        reader = make_reader(f)
        s = reader.get_summary()
        assert s is not None, "the file has no summary"
        channels = s.channels
        assert sorted(c.topic for c in channels.values()) == sorted(recorded)
        schemas = {s.schemas[c.schema_id].name for c in channels.values()}
        assert schemas == set(SIZES)
        for c in channels.values():
            schema = s.schemas[c.schema_id]
            assert (schema.encoding, c.message_encoding) == ("shmx", "shmx")
            assert schema.data.decode() == c.metadata["shmx.schema"]
            assert c.metadata["shmx.fingerprint"].startswith("0x")
            assert int(c.metadata["shmx.size"]) <= SIZES[schema.name]
            assert s.statistics.channel_message_counts[c.id] == recorded[c.topic]["messages"]
            assert recorded[c.topic]["type"] == schema.name
        # Every message: its bytes as published (the lidar's with its tail), its publisher's
        # sequence numbers going up by one, the first field (`seq`) counting the same way.
        seen = {}
        count = 0
        for schema, channel, message in reader.iter_messages():
            count += 1
            assert len(message.data) == SIZES[schema.name], schema.name
            (seq,) = struct.unpack_from("<Q", message.data)
            last = seen.get(channel.topic)
            if last is not None:
                assert (seq, message.sequence) == (last[0] + 1, last[1] + 1)
            seen[channel.topic] = (seq, message.sequence)
            assert message.publish_time <= message.log_time
        assert count == s.statistics.message_count == sum(
            t["messages"] for t in summary["topics"])


def test_a_json_export_has_field_names(root, shmx_tool, rust_example, tmp_path):
    path = tmp_path / "sensors.mcap"
    record_sensor_network(shmx_tool, rust_example, path)
    exported = tmp_path / "sensors.json.mcap"
    run = subprocess.run([shmx_tool, "export", str(path), "-o", str(exported)],
                         capture_output=True, text=True, timeout=DEADLINE)
    assert run.returncode == 0, run.stderr
    with open(exported, "rb") as f:
        reader = make_reader(f)
        imu = 0
        for schema, channel, message in reader.iter_messages():
            assert (schema.encoding, channel.message_encoding) == ("jsonschema", "json")
            props = json.loads(schema.data)["properties"]
            value = json.loads(message.data)
            assert list(value) == list(props)
            if schema.name == "Imu":
                imu += 1
                assert list(value) == ["seq", "stamp_ns", "accel", "gyro"]
                assert len(value["gyro"]) == 3
            if schema.name == "LidarScan":
                assert len(value["ranges"]) == 360
        assert imu > 0
