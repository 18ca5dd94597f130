"""The closed loop in the simulated world: with the oracle segmenter (the geometry and the
controller apart from the network), the Socket.IO mode with a real client/server pair on
127.0.0.1, ``sim serve`` in real time, and the video and report files."""

import argparse
import json

import numpy as np
import pytest

pytest.importorskip("pybullet")  # the [sim] extra

from followme.follower.config import FollowConfig  # noqa: E402
from followme.follower.quadsim import protocol  # noqa: E402
from followme.follower.quadsim.server import ServerThread  # noqa: E402
from followme.sim.camera import encode_depth  # noqa: E402
from followme.sim.control import FOLLOW  # noqa: E402
from followme.sim.loop import ClosedLoop, LoopSettings, OracleSegmenter, run_loop  # noqa: E402

SMALL = {"people": 10, "px_per_m": 8.0}


def test_sensor_frame_is_what_the_follower_parses():
    loop = ClosedLoop(LoopSettings(**SMALL))
    try:
        frame, fields = loop.capture()
    finally:
        loop.close()
    parsed = protocol.parse_sensor_frame(fields)
    rgb = protocol.decode_rgb(parsed.rgb)
    assert np.abs(rgb.astype(int) - frame.rgb).mean() < 8          # JPEG, quality 75
    np.testing.assert_array_equal(protocol.decode_depth(parsed.depth),
                                  encode_depth(frame.depth)[..., 0])
    assert parsed.gimbal.to_world([0, 0, 0]) == pytest.approx(frame.gimbal_pose.position,
                                                              abs=1e-4)
    assert parsed.pose.z == pytest.approx(frame.quad_pose.z, abs=1e-4)
    assert (frame.labels == 2).sum() > 100                           # starts with her in view


@pytest.mark.slow
def test_oracle_closed_loop_keeps_the_hero_in_view_and_at_distance():
    """60 s of simulated time with the true labels in place of the network."""
    oracle = OracleSegmenter()
    s = run_loop(LoopSettings(seconds=60.0, **SMALL), oracle, progress=False).summary()
    assert s["frames"] == 300 and oracle.unknown == 0  # QuadSim's 5 frames a second
    assert s["hero_in_view_share"] >= 0.95, s
    assert s["within_2_6m_share"] >= 0.90, s
    assert s["wrong_detections"] == s["wrong_target_frames"] == s["set_aside"] == 0
    assert s["detections"] >= 0.9 * s["frames"]


@pytest.mark.slow
def test_after_a_blackout_the_quad_searches_and_re_acquires_her():
    """The camera sees nothing for 3 s from t = 10 s: object_lost, hold after her predicted
    position, and her again within 5 s of the loss."""
    settings = LoopSettings(seconds=20.0, blackout=3.0, blackout_every=10.0, **SMALL)
    metrics = run_loop(settings, OracleSegmenter(), progress=False)
    s = metrics.summary()
    blind = [f for f in metrics.frames if 10.0 <= f.t < 13.0 - 1e-6]
    assert len(blind) == 15 and all(f.hero_pixels == 0 and not f.detected for f in blind)
    assert {f.mode for f in blind} >= {"hold"}
    assert s["losses"] == 1 and s["not_reacquired"] == 0, s
    # object_lost on the 7th blind frame (1.2 s in at 5 Hz): her back no sooner than 1.8 s later
    assert 3.0 - 6 / settings.camera_hz - 1e-6 <= s["reacquire_max_s"] <= 5.0, s
    assert s["wrong_detections"] == 0


@pytest.mark.slow
def test_the_socket_io_loop_is_the_in_process_loop():
    """10 s with QuadSim's wire (raw WebSocket, EIO=4, pings) to the real server on 127.0.0.1, in
    lock-step: the same run, frame for frame, as the follower called in process."""
    settings = LoopSettings(seconds=10.0, seed=3, **SMALL)
    over_socket = run_loop(settings, OracleSegmenter(), link="socketio", progress=False)
    in_process = run_loop(settings, OracleSegmenter(), progress=False)
    s = over_socket.summary()
    assert s["frames"] == 50 and s["detections"] >= 45 and s["hero_in_view_share"] >= 0.95
    assert over_socket.frames == in_process.frames


@pytest.mark.slow
def test_sim_serve_streams_to_a_follower_in_real_time():
    from followme.sim.serve import serve_sim

    oracle = OracleSegmenter()
    with ServerThread(oracle, FollowConfig(port=0)) as server:
        loop = serve_sim(LoopSettings(seconds=3.0, camera_hz=10.0, **SMALL), server.url, wait=10,
                         oracle=oracle)
        snap = server.stats.snapshot(whole_run=True)
    s = loop.metrics.summary()
    assert s["seconds"] == pytest.approx(3.0, abs=0.3)
    assert snap["received"] == s["frames"] >= 10 and snap["malformed"] == 0
    assert snap["detected"] >= 0.8 * snap["processed"] > 0
    assert s["detections"] >= 0.8 * snap["detected"] and loop.controller.mode == FOLLOW


def test_serve_says_when_no_follower_answers():
    from followme.sim.serve import connect

    with pytest.raises(ConnectionError, match="followme follow"):
        connect("http://127.0.0.1:9", wait=0)


@pytest.mark.parametrize("video", ["follow.gif", "follow.mp4"])
def test_follow_to_files_writes_video_plot_and_metrics(tmp_path, video):
    pytest.importorskip("imageio")
    from PIL import Image

    from followme.sim.report import figures_table, follow_to_files

    summary = follow_to_files(LoopSettings(seconds=2.0, camera_hz=10.0, **SMALL),
                              OracleSegmenter(),
                              tmp_path, "oracle", video=video, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["frames"] == 20 and saved == summary
    assert (tmp_path / "frames.csv").read_text().count("\n") == 21
    assert Image.open(tmp_path / "run.png").size[0] > 300
    assert Image.open(summary["frame"]).size == (1024, 512)
    if video.endswith(".gif"):
        assert Image.open(tmp_path / video).n_frames == 10
    else:
        import imageio.v2 as imageio

        assert imageio.get_reader(tmp_path / video).count_frames() == 20
    assert "| hero in view | 100.0% |" in figures_table({"oracle": summary})


def test_command_lines():
    from followme.sim.commands import add_follow_arguments, add_serve_arguments, loop_settings

    p = argparse.ArgumentParser()
    add_follow_arguments(p)
    a = p.parse_args(["--minutes", "0.5", "--oracle"])
    settings = loop_settings(a)
    assert settings.seconds == 30 and settings.people == 20 and settings.follow.distance == 3.0
    assert a.socketio is False and a.out == "runs/sim_follow" and a.video == "follow.mp4"
    p = argparse.ArgumentParser()
    add_serve_arguments(p)
    a = p.parse_args([])
    assert (a.host, a.port, a.minutes) == ("127.0.0.1", 4567, 1.0)
    with pytest.raises(ValueError):
        loop_settings(p.parse_args(["--minutes", "0"]))


@pytest.mark.slow
@pytest.mark.parametrize("autopilot,command", [("px4", "follow-target"),
                                               ("ardupilot", "setpoints")])
def test_the_loop_closes_over_mavlink(autopilot, command):
    """The follower commands the sim's quad as a PX4 / ArduPilot vehicle over UDP: the operator
    selects the follow mode, and the vehicle keeps her in view."""
    from followme.follower.mavlink.commander import CommanderSettings

    settings = LoopSettings(seconds=20.0, **SMALL)
    mavlink = CommanderSettings(autopilot, command)
    s = run_loop(settings, OracleSegmenter(), link="mavlink", mavlink=mavlink,
                 progress=False).summary()
    assert s["hero_in_view_share"] >= 0.9 and s["wrong_person_frames"] == 0
    assert s["mode_share"].get("follow", 0) >= 0.9 and s["detections"] >= 80


def test_a_scenario_is_one_entry_in_the_registry(monkeypatch, capsys):
    from dataclasses import replace

    from followme.cli import main
    from followme.sim import scenarios
    from followme.sim.commands import add_follow_arguments, loop_settings

    seen = []
    monkeypatch.setitem(scenarios.SCENARIOS, "two", scenarios.Scenario(
        "two", "two people", adjust=lambda s: replace(s, people=2),
        prepare=lambda world, rng: seen.append(len(world.people))))
    assert main(["sim", "scenarios"]) == 0
    listed = capsys.readouterr().out
    assert "park" in listed and "\ntwo         two people\n" in listed
    import argparse

    p = argparse.ArgumentParser()
    add_follow_arguments(p)
    settings = loop_settings(p.parse_args(["--scenario", "two", "--minutes", "0.02"]))
    assert settings.people == 2 and settings.scenario == "two"
    run_loop(replace(settings, px_per_m=8.0), OracleSegmenter(), progress=False)
    assert seen == [3]  # the hero and two others
    with pytest.raises(ValueError, match="--scenario nope: choose one of park"):
        loop_settings(p.parse_args(["--scenario", "nope"]))
