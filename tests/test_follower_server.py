"""The follower end to end: real Socket.IO clients against the server on 127.0.0.1 (an ephemeral
port), QuadSim's own wire format, the shipped model on real frames, --viz and --record."""

import argparse
import json
import logging
import time

import numpy as np
import pytest
import websocket

from conftest import SHARED
from follower_helpers import (
    Collector,
    ColourSegmenter,
    QuadSimCamera,
    b64,
    depth_png,
    synthetic_frame,
    wait_until,
)
from followme.data.robond import find_pairs, read_pair
from followme.follower import add_arguments, config_from_args
from followme.follower.config import FollowConfig
from followme.follower.quadsim.server import ServerThread
from followme.follower.tracking import Detected

CAMERA = QuadSimCamera((10, -5, 12), (40, 60, 0))
HERO = CAMERA.point_at(120, 140, 16.0)


def _quadsim_connect(port: int) -> websocket.WebSocket:
    """Connect the way QuadSim's Unity client does: a WebSocket straight away, EIO=4 in the URL,
    no namespace CONNECT from the client."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=10)
    opened = ws.recv()
    assert opened.startswith("0{") and json.loads(opened[1:])["pingInterval"] == 25000
    assert ws.recv() == "40"  # Socket.IO 2: the server connects the default namespace itself
    return ws


def _events(ws: websocket.WebSocket, count: int) -> list:
    out = []
    while len(out) < count:
        message = ws.recv()
        if message.startswith("42"):
            out.append(json.loads(message[2:]))
    return out


def test_quadsim_wire_format():
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0)) as server:
        ws = _quadsim_connect(server.server.port)
        ws.send("2")  # QuadSim pings (Engine.IO 3: the client pings, the server pongs)
        assert ws.recv() == "3"
        # QuadSim writes JSON with its own JSONObject: '42["sensor_frame",{...}]'
        ws.send("42" + json.dumps(["sensor_frame", synthetic_frame(CAMERA, HERO)],
                                  separators=(",", ":")))
        (name, detected), (marker_name, marker) = _events(ws, 2)
        assert name == "object_detected" and list(detected) == ["coords"]
        assert np.linalg.norm(np.array(detected["coords"]) - HERO) < 0.25
        assert marker_name == "create_box_marker" and isinstance(marker["id"], int)
        assert marker["pose"][:3] == detected["coords"] and marker["duration"] == 0.4
        ws.close()


def test_a_socket_io_3_client_gets_a_clear_refusal():
    """Only QuadSim's direct WebSocket is let in with EIO=4; a Socket.IO 3/4 client starts with
    long-polling and is told its protocol is not spoken."""
    import requests

    with ServerThread(ColourSegmenter(160), FollowConfig(port=0)) as server:
        r = requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling", timeout=10)
        assert r.status_code == 400 and "unsupported version" in r.text


def test_long_polling_clients_are_served_too():
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0)) as server:
        client = Collector(server.url, transports=("polling", "websocket"))
        client.emit("sensor_frame", synthetic_frame(CAMERA, HERO))
        got = client.wait_for("object_detected")
        assert np.linalg.norm(np.array(got[0]["coords"]) - HERO) < 0.25
        client.close()


def test_the_sims_quadsim_client_speaks_as_quadsim_and_is_answered():
    """``sim serve``'s client: raw WebSocket with EIO=4, Engine.IO 3 framing, pings answered."""
    from followme.sim.link import SocketIOFollower, quadsim_url

    assert quadsim_url("http://127.0.0.1:4567") == \
        "ws://127.0.0.1:4567/socket.io/?EIO=4&transport=websocket"
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0)) as server:
        wire = []
        link = SocketIOFollower(server.url, server.stats, ping_interval=0.05,
                                on_event=lambda name, payload, _: wire.append((name, payload)))
        answer = link.send(synthetic_frame(CAMERA, HERO))
        assert [name for name, _ in wire] == ["object_detected", "create_box_marker"]
        assert len(answer) == 1 and isinstance(answer[0], Detected)
        assert np.linalg.norm(np.array(answer[0].world) - HERO) < 0.25
        assert answer[0].world == tuple(wire[0][1]["coords"])
        time.sleep(0.5)  # about ten pings
        assert link.connected and 0.04 < link.longest_pong_wait < 0.5
        assert link.malformed == 0
        link.close()
        assert not link.connected
        snap = server.stats.snapshot(whole_run=True)
    assert snap["received"] == 1 and snap["malformed"] == 0


def test_object_lost_after_k_frames_without_the_hero():
    config = FollowConfig(port=0, lost_after=3)
    with ServerThread(ColourSegmenter(160), config) as server:
        client = Collector(server.url)
        frames = [synthetic_frame(CAMERA, HERO)] * 2 + [synthetic_frame(CAMERA, None)] * 5
        for i, frame in enumerate(frames):
            client.emit("sensor_frame", frame)
            assert wait_until(lambda i=i: server.stats.processed > i, 10)
        lost = client.wait_for("object_lost")
        time.sleep(0.2)
        assert lost == [{"data": ""}] and len(client.named("object_detected")) == 2
        assert client.named("delete_marker") == [{"id": 1}]
        names = [n for n, _, _ in client.events]
        assert names.index("object_lost") == len(names) - 2  # after every detection
        client.close()


def test_a_flooding_client_does_not_block_another():
    segmenter = ColourSegmenter(160, delay=0.02)
    with ServerThread(segmenter, FollowConfig(port=0)) as server:
        flood, calm = Collector(server.url), Collector(server.url)
        frame = synthetic_frame(CAMERA, HERO)
        for _ in range(100):
            flood.emit("sensor_frame", frame)
        t0 = time.perf_counter()
        calm.emit("sensor_frame", frame)
        assert calm.wait_for("object_detected", timeout=10)
        assert time.perf_counter() - t0 < 2.0  # not behind 100 frames of 20 ms
        assert wait_until(lambda: server.stats.received == 101, 10)
        assert wait_until(lambda: server.server.worker.idle(), 10)
        snap = server.stats.snapshot()
        assert snap["dropped"] > 50 and snap["processed"] + snap["dropped"] == 101
        flood.close()
        calm.close()


def test_a_failing_model_is_counted_and_the_server_goes_on(caplog):
    class Flaky(ColourSegmenter):
        def __call__(self, frame):
            if self.calls in (1, 2):  # call 0 is the warm-up
                self.calls += 1
                raise RuntimeError("model exploded")
            return super().__call__(frame)

    with ServerThread(Flaky(160), FollowConfig(port=0)) as server:
        client = Collector(server.url)
        for i in range(3):
            client.emit("sensor_frame", synthetic_frame(CAMERA, HERO))
            assert wait_until(lambda i=i: server.stats.processed + server.stats.errors > i, 10)
        assert len(client.wait_for("object_detected")) == 1
        assert server.stats.errors == 2
        client.close()
    assert sum("model exploded" in r.getMessage() or "model exploded" in (r.exc_text or "")
               for r in caplog.records) >= 1


def test_stats_are_logged_periodically(caplog):
    caplog.set_level(logging.INFO, logger="followme.follower")
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0, log_every=0.1)) as server:
        client = Collector(server.url)
        client.emit("sensor_frame", synthetic_frame(CAMERA, HERO))
        client.wait_for("object_detected")
        assert wait_until(lambda: any("received 1 processed 1" in r.message and "p99" in r.message
                                      for r in caplog.records), 5)
        client.close()
    assert any("(whole run)" in r.message for r in caplog.records)


def test_viz_and_record(tmp_path):
    config = FollowConfig(port=0, viz=tmp_path / "viz" / "overlay.png", record=tmp_path / "rec")
    with ServerThread(ColourSegmenter(160), config) as server:
        client = Collector(server.url)
        for frame in (synthetic_frame(CAMERA, HERO), synthetic_frame(CAMERA, None)):
            client.emit("sensor_frame", frame)
            n = server.stats.processed
            assert wait_until(lambda n=n: server.stats.processed > n, 10)
        client.close()
    assert (tmp_path / "viz" / "overlay.png").is_file()
    pairs, problems = find_pairs(tmp_path / "rec")
    assert len(pairs) == 2 and problems == []
    image, labels = read_pair(pairs[0])
    assert image.shape == (256, 256, 3) and (labels == 2).sum() > 50
    assert (read_pair(pairs[1])[1] == 0).all()
    rows = (tmp_path / "rec" / "frames.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("n,client,timestamp")
    assert len(list((tmp_path / "rec" / "depth").iterdir())) == 2


def test_command_line_defaults():
    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args([])
    assert (a.host, a.port, a.model, a.viz, a.record) == ("127.0.0.1", 4567, None, None, None)
    config = config_from_args(a)
    assert config.min_pixels == 10 and config.lost_after == 7  # the course: num_no_see > 6
    # QuadSim's camera: 60 degrees (fx = 221.7 px at 256 px), depth 255 = 100 m
    assert config.camera.focal * 256 == pytest.approx(221.70, abs=0.01)
    assert config.camera.depth_max == 100.0
    assert config.max_payload == 4 * 1024 * 1024
    a = p.parse_args(["--viz", "--host", "0.0.0.0", "--pixel-axes", "course"])
    config = config_from_args(a)
    assert str(config.viz) == "runs/follow/overlay.png" and config.host == "0.0.0.0"
    assert config.camera.pixel_axes == "course"
    with pytest.raises(ValueError):
        config_from_args(p.parse_args(["--lost-after", "0"]))


def test_followme_follow_is_a_verb():
    from followme.cli import build_parser

    argv = ["follow", "--port", "4568"]
    a = build_parser(argv).parse_args(argv)
    assert a.port == 4568 and a.host == "127.0.0.1" and a.verb_run.__module__ == "followme.follower"


def test_a_port_in_use_is_an_error():
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0)) as first:
        with pytest.raises(OSError):
            with ServerThread(ColourSegmenter(160), FollowConfig(port=first.server.port)):
                pass


# --- the shipped model on real frames ---

@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "validation_grade").is_dir(),
                    reason=f"the shared RoboND data is not at {SHARED}")
def test_real_frames_with_the_shipped_model():
    """25 frames with the hero (following_images), then 25 without (patrol_non_targ), with a
    synthetic depth of 10 m and a level camera 2 m up: object_detected for the hero frames, then
    object_lost."""
    from followme.checkpoint import load_checkpoint
    from followme.segment.segmenter import HeroSegmenter, TorchRuntime

    grade = SHARED / "validation_grade"
    following = sorted((grade / "following_images" / "images").glob("*.jpeg"))[:25]
    empty = sorted((grade / "patrol_non_targ" / "images").glob("*.jpeg"))[:25]
    depth = b64(depth_png(np.full((256, 256), 10.0)))
    loaded = load_checkpoint()
    segmenter = HeroSegmenter(TorchRuntime(loaded.model, loaded.image_size,
                                           loaded.normalization))
    with ServerThread(segmenter, FollowConfig(port=0)) as server:
        client = Collector(server.url)
        for i, path in enumerate(following + empty):
            client.emit("sensor_frame", {
                "timestamp": f"{i / 5:.2f}", "rgb_image": b64(path.read_bytes()),
                "depth_image": depth, "pose": "0,0,2,0,0,0", "gimbal_pose": "0,0,2,0,0,0"})
            assert wait_until(lambda i=i: server.stats.processed > i, 20), server.stats.snapshot()
            if i == len(following) - 1:
                assert wait_until(lambda: len(client.named("object_detected")) >= 22, 5)
                detected = client.named("object_detected")
                assert not client.named("object_lost")
        lost = client.wait_for("object_lost", timeout=5)
        client.close()
    assert len(lost) >= 1
    for coords in (d["coords"] for d in detected):
        # 10 m ahead of a camera at (0, 0, 2) that looks along x, within its 60 degree view;
        # depth comes in steps of 100 m / 255
        assert coords[0] == pytest.approx(10.0, abs=100 / 255 / 2 + 1e-6)
        assert abs(coords[1]) <= 5.0 and abs(coords[2] - 2.0) <= 5.0
    snap = server.stats.snapshot(whole_run=True)
    assert snap["processed"] == 50 and snap["malformed"] == 0 and snap["errors"] == 0


def test_the_command_serves_until_sigterm():
    """``cmd_follow`` as ``followme follow`` runs it: the shipped model, a stats line at exit."""
    import re
    import signal
    import subprocess
    import sys
    import threading

    code = ("import argparse, logging, sys\n"
            "from followme.follower import add_arguments, run\n"
            "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
            "p = argparse.ArgumentParser(); add_arguments(p)\n"
            "sys.exit(run(p.parse_args(sys.argv[1:])))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", "0", "--log-every", "0.5"],
                            stderr=subprocess.PIPE, text=True)
    guard = threading.Timer(90, proc.kill)  # never hang the suite on a silent server
    guard.start()
    try:
        port = None
        for line in proc.stderr:
            if m := re.search(r"listening on ws://127\.0\.0\.1:(\d+)/socket\.io/", line):
                port = int(m.group(1))
                break
        assert port, "the follower did not say where it listens"
        client = Collector(f"http://127.0.0.1:{port}")
        client.emit("sensor_frame", synthetic_frame(CAMERA, HERO))
        for line in proc.stderr:  # the periodic stats line, every 0.5 s
            if "received 1 processed 1" in line:
                break
        client.close()
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(30) == 0
    finally:
        guard.cancel()
        proc.kill()
        proc.stderr.close()
    assert re.search(r"received 1 processed 1 .*\(whole run\)", rest), rest
