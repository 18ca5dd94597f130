"""The live page of ``followme follow``: its JSON and JPEG, its Host rule, and the page in a real
browser (Debian's Chromium, headless) changing from waiting to detected as frames arrive."""

import io
import json
import os
import re
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest
import requests
from PIL import Image

from conftest import SHARED
from follower_helpers import (
    Collector,
    ColourSegmenter,
    QuadSimCamera,
    b64,
    depth_png,
    synthetic_frame,
)
from followme.follower.config import FollowConfig
from followme.follower.quadsim.server import ServerThread

CAMERA = QuadSimCamera((0, 0, 10), (45, 0, 0))
HERO = CAMERA.point_at(150, 110, 14.0)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def wait_for_state(server, state: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while requests.get(f"{server.url}/status.json", timeout=5).json()["state"] != state:
        assert time.monotonic() < deadline, f"the page never said {state}"
        time.sleep(0.02)


def wait_for_processed(server, count: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while requests.get(f"{server.url}/status.json",
                       timeout=5).json()["figures"]["processed"] < count:
        assert time.monotonic() < deadline, f"{count} frames never processed"
        time.sleep(0.02)


def test_status_and_frame_follow_the_frames():
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0)) as server:
        status = requests.get(f"{server.url}/status.json", timeout=5).json()
        assert status["state"] == "waiting" and status["frame_id"] == -1
        assert requests.get(f"{server.url}/frame.jpg", timeout=5).status_code == 404
        page = requests.get(f"{server.url}/", timeout=5)
        assert page.headers["Content-Type"].startswith("text/html") and "status.json" in page.text
        client = Collector(server.url)
        client.emit("sensor_frame", synthetic_frame(CAMERA, HERO))
        client.wait_for("object_detected")
        wait_for_state(server, "detected")
        status = requests.get(f"{server.url}/status.json", timeout=5).json()
        assert status["figures"]["processed"] == 1 and status["figures"]["clients"] == 1
        assert status["latency_p50_ms"] > 0
        jpeg = requests.get(f"{server.url}/frame.jpg", timeout=5)
        assert jpeg.headers["Content-Type"] == "image/jpeg"
        image = np.asarray(Image.open(io.BytesIO(jpeg.content)))
        assert image.shape == (256, 256, 3)
        row, col = 150, 110  # the hero, tinted blue with a white cross on her centroid
        assert image[row, col, 2] > image[row, col, 0] or image[row, col].min() > 200
        for k in range(7):  # misses, one processed at a time (the worker drops stale frames)
            client.emit("sensor_frame", synthetic_frame(CAMERA, None))
            wait_for_processed(server, 2 + k)
        assert client.wait_for("object_lost")
        wait_for_state(server, "lost")  # the page's status follows the event, not before it
        client.close()


def test_the_page_keeps_the_host_rule():
    with ServerThread(ColourSegmenter(160), FollowConfig(port=0)) as server:
        for path in ("/", "/status.json", "/frame.jpg"):
            r = requests.get(f"{server.url}{path}", headers={"Host": "rebind.evil.example"},
                             timeout=5)
            assert r.status_code == 403
        port = server.url.rsplit(":", 1)[1]
        foreign = requests.get(f"{server.url}/status.json", timeout=5,
                               headers={"Origin": "http://evil.example"})
        own = requests.get(f"{server.url}/status.json", timeout=5,
                           headers={"Origin": f"http://127.0.0.1:{port}"})
        assert foreign.status_code == 403 and "Origin" in foreign.text
        assert own.status_code == 200


def _chromium(url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=3000", *extra, url],
                          capture_output=True, text=True, timeout=90)


def _state_on_page(url: str) -> str:
    dom = _chromium(url, "--dump-dom").stdout
    match = re.search(r'<div id="state" class="(\w+)">(\w+)</div>', dom)
    assert match, dom[-500:]
    return match.group(2)


def _frames(stop: threading.Event, client: Collector) -> None:
    """Real RoboND frames of the hero where the shared data is, else synthetic ones."""
    files = sorted((SHARED / "validation_grade" / "following_images" / "images").glob("*.jpeg"))
    depth = b64(depth_png(np.full((256, 256), 10.0)))
    k = 0
    while not stop.is_set():
        if files:
            fields = {"timestamp": f"{k / 5:.2f}", "rgb_image": b64(files[k % 40].read_bytes()),
                      "depth_image": depth, "pose": "0,0,2,0,0,0",
                      "gimbal_pose": "0,0,2,0,0,0"}
        else:
            fields = synthetic_frame(CAMERA, HERO, timestamp=k / 5)
        client.emit("sensor_frame", fields)
        k += 1
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium "
                                             "(.ci/run installs it)")
def test_the_page_in_a_real_browser_goes_from_waiting_to_detected(tmp_path):
    from followme.segment.segmenter import load_segmenter

    real = (SHARED / "validation_grade").is_dir()
    segmenter = load_segmenter() if real else ColourSegmenter(160)
    with ServerThread(segmenter, FollowConfig(port=0)) as server:
        url = f"{server.url}/"
        assert _state_on_page(url) == "waiting"
        client = Collector(server.url)
        stop = threading.Event()
        sender = threading.Thread(target=_frames, args=(stop, client), daemon=True)
        sender.start()
        try:
            client.wait_for("object_detected", timeout=30)
            assert _state_on_page(url) == "detected"
            shot = tmp_path / "live_view.png"
            _chromium(url, "--window-size=1000,480", f"--screenshot={shot}")
            assert shot.is_file() and Image.open(shot).size == (1000, 480)
            keep = os.environ.get("FOLLOWME_SCREENSHOT_DIR")  # docs/ for the README
            if keep:
                shutil.copy(shot, os.path.join(keep, "live_view.png"))
        finally:
            stop.set()
            sender.join(2)
            client.close()
    assert json.dumps(server.final_stats)  # the follower stopped cleanly


def test_sim_follow_view_serves_the_camera_the_map_and_the_figures():
    pytest.importorskip("pybullet")
    from followme.follower.live import LiveServer
    from followme.sim.loop import LoopSettings, OracleSegmenter, run_loop
    from followme.sim.video import LiveView

    live = LiveView("sim test")
    with LiveServer(live.feed) as url:
        assert requests.get(f"{url}status.json", timeout=5).json()["state"] == "waiting"
        run_loop(LoopSettings(seconds=3.0, people=4, px_per_m=8.0), OracleSegmenter(),
                 observers=[live], progress=False)
        status = requests.get(f"{url}status.json", timeout=5).json()
        assert status["state"] == "detected" and status["frame_id"] == 14
        assert status["map_id"] == 14 and status["figures"]["hero in view"] == "100.0%"
        for path, kind in (("frame.jpg", "JPEG"), ("map.png", "PNG")):
            r = requests.get(f"{url}{path}", timeout=5)
            assert Image.open(io.BytesIO(r.content)).format == kind
        assert requests.get(url, headers={"Host": "evil.example"}, timeout=5).status_code == 403
