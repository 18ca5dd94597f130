"""The follower under hostile input below the sensor_frame level: foreign Host headers (DNS
rebinding), Engine.IO and Socket.IO junk on both transports, an oversize long-polling POST. Each
is refused in one warning line (never a traceback), counted, and the server goes on answering."""

import json
import logging
import re
import time

import numpy as np
import pytest
import requests
import websocket

from follower_helpers import ColourSegmenter, QuadSimCamera, synthetic_frame, wait_until
from followme.follower.config import FollowConfig
from followme.follower.quadsim.server import ServerThread

CAMERA = QuadSimCamera((10, -5, 12), (40, 60, 0))
HERO = CAMERA.point_at(120, 140, 16.0)


def _frame_packet() -> str:
    """A valid sensor_frame as a Socket.IO 2 event packet, as QuadSim writes it."""
    return "42" + json.dumps(["sensor_frame", synthetic_frame(CAMERA, HERO)],
                             separators=(",", ":"))


def _no_tracebacks(caplog) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [(r.name, r.getMessage()) for r in bad]
    assert all("\n" not in r.getMessage() for r in caplog.records)


def _websocket(port: int, **kw) -> websocket.WebSocket:
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=10, **kw)
    assert ws.recv().startswith("0{") and ws.recv() == "40"
    return ws


def _detected_over_websocket(ws: websocket.WebSocket) -> list:
    ws.send(_frame_packet())
    while True:
        message = ws.recv()
        if message.startswith('42["object_detected"'):
            return json.loads(message[2:])[1]["coords"]


class _Polling:
    """A raw Engine.IO 3 long-polling session (text framing, b64=1)."""

    def __init__(self, url: str):
        self.base = f"{url}/socket.io/?EIO=3&transport=polling&b64=1"
        r = requests.get(self.base, timeout=10)
        assert r.status_code == 200
        self.sid = re.search(r'"sid":"(\w+)"', r.text).group(1)
        self.url = f"{self.base}&sid={self.sid}"

    def post(self, body: bytes | str, timeout: float = 10) -> requests.Response:
        return requests.post(self.url, data=body, timeout=timeout)

    def send(self, packet: str) -> requests.Response:
        return self.post(f"{len(packet)}:{packet}".encode())

    def detected(self, timeout: float = 10) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = requests.get(self.url, timeout=timeout)
            assert r.status_code == 200, r.text
            if m := re.search(r'42\["object_detected",(\{.*?\})\]', r.text):
                return json.loads(m.group(1))["coords"]
        raise AssertionError("no object_detected over long-polling")


# --- 11: the Host header (DNS rebinding) ---

def test_host_names():
    from followme.follower.hosts import host_allowed, host_name

    assert host_name("[::1]:4567") == "::1" and host_name("LocalHost.:80") == "localhost"
    assert host_name("127.0.0.1:4567") == "127.0.0.1" and host_name("::1") == "::1"
    for ok in ("127.0.0.1:4567", "127.0.0.1", "localhost:1", "LOCALHOST", "[::1]:4567", "::1",
               "[::1]", "127.0.0.2:4567", "localhost.:4567"):
        assert host_allowed(ok, "127.0.0.1"), ok
    for bad in ("evil.example:4567", "evil.example", "localhost.evil.example", "127.0.0.1.nip.io",
                "", None, "[::1", "192.168.1.20:4567", "0.0.0.0:4567"):
        assert not host_allowed(bad, "127.0.0.1"), bad
    assert host_allowed("192.168.1.20:4567", "192.168.1.20")  # the address listened on
    assert host_allowed("Quad.Local:4567", "0.0.0.0", ("quad.local",))
    assert host_allowed("quad.local", "0.0.0.0", ("quad.local:4567",))  # any port
    assert not host_allowed("evil.example", "0.0.0.0", ("quad.local",))
    assert host_allowed("anything.example", "0.0.0.0", ("*",))


def test_an_origin_must_be_the_pages_own():
    from followme.follower.hosts import origin_allowed, refusal
    assert origin_allowed(None, "127.0.0.1:4567")            # not from a page
    assert origin_allowed("http://127.0.0.1:4567", "127.0.0.1:4567")
    assert not origin_allowed("http://127.0.0.1:8000", "127.0.0.1:4567")  # another port
    assert not origin_allowed("https://evil.example", "127.0.0.1:4567")
    assert not origin_allowed("null", "127.0.0.1:4567")
    assert refusal("127.0.0.1:4567", "http://evil.example", "127.0.0.1") == "Origin not accepted"
    assert refusal("evil.example", None, "127.0.0.1") == "Host not accepted"
    assert refusal("127.0.0.1:4567", None, "127.0.0.1") is None
    assert refusal("x.example", "http://y.example", "0.0.0.0", ("*",)) is None


def test_a_foreign_host_header_is_refused(caplog):
    """A web page that rebinds its own name to 127.0.0.1 sends Host and Origin with that name:
    the Origin check passes (they agree), the Host check does not."""
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0)) as server:
        port = server.server.port
        handshake = f"{server.url}/socket.io/?EIO=3&transport=polling"
        evil = f"rebind.evil.example:{port}"
        r = requests.get(handshake, headers={"Host": evil, "Origin": f"http://{evil}"},
                         timeout=10)
        assert r.status_code == 403
        with pytest.raises(websocket.WebSocketBadStatusException) as e:
            websocket.create_connection(
                f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=10,
                host=evil, origin=f"http://{evil}")
        assert e.value.status_code == 403
        assert not server.server.clients  # nobody got in
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
            r = requests.get(handshake, headers={"Host": host}, timeout=10)
            assert r.status_code == 200, host
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                    and "Host" in r.getMessage()]
        assert len(warnings) >= 1 and evil in warnings[0] and "--allow-host" in warnings[0]
        ws = _websocket(port)  # and QuadSim's connection is served as before
        assert np.linalg.norm(np.array(_detected_over_websocket(ws)) - HERO) < 0.25
        ws.close()
    _no_tracebacks(caplog)


def test_allow_host_accepts_more_names():
    config = FollowConfig(port=0, allow_hosts=("quad.local",))
    with ServerThread(ColourSegmenter(160), config) as server:
        handshake = f"{server.url}/socket.io/?EIO=3&transport=polling"
        for host, status in (("quad.local:4567", 200), ("QUAD.local", 200),
                             (f"127.0.0.1:{server.server.port}", 200),
                             ("rebind.evil.example", 403)):
            assert requests.get(handshake, headers={"Host": host}, timeout=10).status_code \
                == status, host


def test_allow_host_on_the_command_line():
    import argparse

    from followme.follower import add_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert config_from_args(p.parse_args([])).allow_hosts == ()
    a = p.parse_args(["--host", "0.0.0.0", "--allow-host", "quad.local",
                      "--allow-host", "192.168.1.20"])
    assert config_from_args(a).allow_hosts == ("quad.local", "192.168.1.20")
    with pytest.raises(ValueError, match="--allow-host"):
        config_from_args(p.parse_args(["--allow-host", "http://x/"]))


# --- 16: library-level junk, counted and warned in one line ---

def test_websocket_junk_is_counted_and_warned_in_one_line(caplog):
    packets = ["42[not json", "9", "x", "", "4x", "49", '44"err"', "42[]", '42{"a":1}',
               '42["connect"]', '42["disconnect"]', "43[1]", "b4aGVsbG8=", "42" + "[" * 50_000,
               '4{"a":1}', "41.5", "4null", '4"x"']
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0, log_every=3600)) as server:
        ws = _websocket(server.server.port)
        for junk in packets:
            ws.send(junk)
        ws.send('451-["sensor_frame",{"_placeholder":true,"num":0}]')
        ws.send_binary(b"\x04hello")
        ws.send_binary(b"4\xff\xfe")
        stats = server.stats
        assert wait_until(lambda: stats.snapshot()["malformed"] >= len(packets) + 3, 10), \
            stats.snapshot()
        # the same connection is still served, correctly
        assert np.linalg.norm(np.array(_detected_over_websocket(ws)) - HERO) < 0.25
        ws.close()
    snap = server.stats.snapshot()
    assert snap["malformed_by_reason"] == {"packet": len(packets), "binary": 3}
    assert snap["received"] == 1 and snap["processed"] == 1 and snap["errors"] == 0
    assert snap["disconnects"] == 1  # the '42["disconnect"]' event did not count as one
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "(packet: 1 so far)" in warned and "(binary: 1 so far)" in warned
    _no_tracebacks(caplog)


def test_long_polling_junk_is_counted_and_warned_in_one_line(caplog):
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0, log_every=3600)) as server:
        polling = _Polling(server.url)
        for body in (b"5:42[xx", b"1:9", b"abc", b"\x00\x05\xff4\xff", b"10:b4aGVsbG8="):
            assert polling.post(body).status_code == 200
        mixed = '42["other",1]'  # junk beside a good packet: the good one still arrives
        assert polling.post(f"2:9x{len(mixed)}:{mixed}".encode()).status_code == 200
        stats = server.stats
        assert wait_until(lambda: stats.snapshot()["malformed"] >= 6, 10), stats.snapshot()
        assert polling.send(_frame_packet()).status_code == 200
        assert np.linalg.norm(np.array(polling.detected()) - HERO) < 0.25
        snap = stats.snapshot()
    assert snap["malformed_by_reason"] == {"packet": 5, "binary": 1}
    assert snap["received"] == 1 and snap["errors"] == 0
    _no_tracebacks(caplog)


def test_an_oversize_polling_post_gets_413_at_once(caplog):
    config = FollowConfig(port=0, max_payload=64 * 1024, log_every=3600)  # HTTP limit: 1 MiB
    with ServerThread(ColourSegmenter(160), config) as server:
        polling = _Polling(server.url)
        t0 = time.perf_counter()
        r = polling.post(b"x" * (3 << 19), timeout=5)
        assert r.status_code == 413 and time.perf_counter() - t0 < 3
        assert server.stats.snapshot()["malformed_by_reason"] == {"oversize": 1}
        assert any("413" in r.getMessage() and str(3 << 19) in r.getMessage()
                   for r in caplog.records if r.levelno == logging.WARNING)
        # the session goes on
        assert polling.send(_frame_packet()).status_code == 200
        assert np.linalg.norm(np.array(polling.detected()) - HERO) < 0.25
    _no_tracebacks(caplog)
