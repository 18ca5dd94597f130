"""The MAVLink transport: frames, the commander's rules, and the sim's vehicle over UDP."""

import contextlib
import json
import logging
import math
import socket
import time
import urllib.request

import numpy as np
import pytest

from followme.follower.config import FollowConfig
from followme.follower.mavlink.autopilots import ARDUPILOT, PX4
from followme.follower.mavlink.commander import (
    POSITION_AND_YAW,
    CommanderSettings,
    FollowCommander,
    VehicleState,
)
from followme.follower.mavlink.frames import (
    camera_pose,
    euler_to_quaternion,
    global_to_offset,
    ned_to_world,
    offset_to_global,
    quaternion_to_euler,
    world_to_ned,
)
from followme.follower.tracking import Detected

pytest.importorskip("pymavlink")


# ---- frames ----

def test_ned_and_the_follower_world_are_one_turn_apart():
    ned = np.array([3.0, 4.0, -10.0])
    assert ned_to_world(ned).tolist() == [3.0, -4.0, 10.0]
    np.testing.assert_allclose(world_to_ned(ned_to_world(ned)), ned)


def test_a_camera_looking_east_and_down_points_there_in_the_follower_world():
    pose = camera_pose([0, 0, -10], roll=0.0, pitch=math.radians(-30), yaw=math.radians(90))
    axis = pose.rotation() @ [1.0, 0.0, 0.0]  # out of the lens
    np.testing.assert_allclose(axis, [0.0, -math.cos(math.radians(30)), -0.5], atol=1e-9)
    assert pose.z == 10.0


def test_quaternions_and_global_offsets_round_trip():
    for rpy in [(0.1, -0.4, 2.5), (0.0, 0.0, -3.0), (-0.2, 0.3, 0.0)]:
        np.testing.assert_allclose(quaternion_to_euler(euler_to_quaternion(*rpy)), rpy,
                                   atol=1e-9)
    lat, lon = offset_to_global(47.4, 8.5, 400.0, -300.0)
    north, east = global_to_offset(47.4, 8.5, lat, lon)
    assert abs(north - 400.0) < 0.01 and abs(east + 300.0) < 0.01


# ---- the commander ----

def _state(autopilot, mode: str, position=(0.0, 0.0, -10.0)) -> VehicleState:
    return VehicleState(heard=100.0, position_time=100.0, custom_mode=autopilot.modes[mode],
                        armed=True,
                        position=np.array(position), velocity=np.zeros(3), lat=47.4, lon=8.5,
                        alt=500.0, attitude=(0.0, 0.0, 0.0))


def _her(n: float, e: float) -> Detected:
    return Detected(tuple(ned_to_world([n, e, 0.0])))


def test_follow_target_carries_her_position_and_then_her_velocity():
    c = FollowCommander(CommanderSettings("px4", "follow-target"))
    state = _state(PX4, "AUTO.FOLLOW_TARGET")
    c.on_event(_her(6.0, 8.0), 100.0)
    [(name, f)] = c.tick(state, 100.0)
    assert name == "follow_target" and f["est_capabilities"] == 1 | 8  # position, heading
    north, east = global_to_offset(47.4, 8.5, f["lat"] / 1e7, f["lon"] / 1e7)
    assert abs(north - 6.0) < 0.02 and abs(east - 8.0) < 0.02 and f["alt"] == 490.0
    for k in range(1, 6):  # walking east at 1 m/s
        c.on_event(_her(6.0, 8.0 + k * 0.2), 100.0 + k * 0.2)
    (_, f), = c.tick(state, 101.0)
    assert f["est_capabilities"] == 1 | 2 | 8 and 0.5 < f["vel"][1] < 1.2 and abs(f["vel"][0]) < 0.2
    assert abs(quaternion_to_euler(f["attitude_q"])[2] - math.pi / 2) < 0.2  # heading east


def test_nothing_is_commanded_outside_the_operators_mode_or_to_a_silent_vehicle():
    c = FollowCommander(CommanderSettings("ardupilot", "follow-target"))
    c.on_event(_her(5.0, 0.0), 100.0)
    assert c.tick(_state(ARDUPILOT, "LOITER"), 100.0) == []
    state = _state(ARDUPILOT, "FOLLOW")
    state.heard = state.position_time = 90.0  # 10 s since its last HEARTBEAT
    assert c.tick(state, 100.0) == []
    px4 = FollowCommander(CommanderSettings("px4", "setpoints"))
    [(name, f)] = px4.tick(_state(PX4, "POSCTL", (1.0, 2.0, -9.0)), 100.0)
    assert name == "set_position_target_local_ned"  # OFFBOARD needs a stream before it
    assert (f["x"], f["y"], f["z"]) == (1.0, 2.0, -9.0)  # ... of "stay where you are"


def test_setpoints_keep_the_distance_face_her_and_move_no_faster_than_allowed():
    c = FollowCommander(CommanderSettings("ardupilot", "setpoints", distance=5.0, height=4.0,
                                          max_speed=3.0))
    state = _state(ARDUPILOT, "GUIDED", (-5.0, 0.0, -4.0))
    c.on_event(_her(0.0, 0.0), 100.0)
    [(name, f)] = c.tick(state, 100.0)
    assert f["type_mask"] == POSITION_AND_YAW and f["coordinate_frame"] == 1
    np.testing.assert_allclose([f["x"], f["y"], f["z"]], [-5.0, 0.0, -4.0], atol=1e-9)
    assert abs(f["yaw"]) < 1e-9  # facing north, at her
    c.on_event(_her(30.0, 0.0), 100.2)  # she jumps 30 m north
    [(_, g)] = c.tick(state, 100.2)
    assert math.dist([g["x"], g["y"], g["z"]], [f["x"], f["y"], f["z"]]) <= 3.0 * 0.2 + 1e-9


def test_a_hero_beyond_range_or_the_fence_is_not_followed():
    c = FollowCommander(CommanderSettings("px4", "follow-target", max_range=20.0,
                                          fence_radius=50.0))
    state = _state(PX4, "AUTO.FOLLOW_TARGET")
    c.on_event(_her(25.0, 0.0), 100.0)
    assert c.tick(state, 100.0) == [] and "beyond --max-range" in c.notes[-1]
    near = FollowCommander(CommanderSettings("px4", "follow-target", max_range=20.0))
    near.on_event(_her(15.0, 0.0), 100.1)
    assert near.tick(state, 100.1)[0][0] == "follow_target"
    fenced = FollowCommander(CommanderSettings("px4", "follow-target", fence_radius=50.0))
    assert fenced.tick(state, 99.0) == []  # the fence is drawn around where it first hears it
    far = _state(PX4, "AUTO.FOLLOW_TARGET", (45.0, 0.0, -10.0))
    fenced.on_event(_her(58.0, 0.0), 100.2)
    assert fenced.tick(far, 100.2) == [] and "fence" in fenced.notes[-1]


@pytest.mark.parametrize("autopilot,on_lost,params", [
    ("px4", "land", (1.0, 4.0, 6.0)), ("px4", "rtl", (1.0, 4.0, 5.0)),
    ("ardupilot", "land", (1.0, 9.0, 0.0)), ("ardupilot", "rtl", (1.0, 6.0, 0.0))])
def test_on_lost_sets_the_mode_once_after_the_grace_period(autopilot, on_lost, params):
    ap = PX4 if autopilot == "px4" else ARDUPILOT
    c = FollowCommander(CommanderSettings(autopilot, "follow-target", on_lost=on_lost,
                                          grace=2.0))
    state = _state(ap, ap.follow_mode["follow-target"])
    c.on_event(_her(5.0, 0.0), 100.0)
    assert c.tick(state, 100.0)[0][0] == "follow_target"
    assert c.tick(state, 101.9)[0][0] == "follow_target"  # within the grace period
    [(name, f)] = c.tick(state, 102.1)
    assert name == "command_long" and f["command"] == 176
    assert (f["param1"], f["param2"], f["param3"]) == params
    assert c.tick(state, 102.3) == []  # once


# ---- the sim's vehicle over UDP ----

def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, vehicle, seconds: float = 5.0, dt: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        vehicle.step(dt)
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture(params=["px4", "ardupilot"])
def vehicle_and_link(request):
    pytest.importorskip("pybullet")  # the sim package
    from followme.follower.mavlink.autopilots import autopilot
    from followme.follower.mavlink.link import MavlinkLink
    from followme.sim.quad import Quad
    from followme.sim.vehicle import SimVehicle, VehicleSettings

    port = _free_udp_port()
    quad = Quad(position=np.array([0.0, 0.0, 6.0]), gimbal_pitch=35.0)
    vehicle = SimVehicle(quad, VehicleSettings(request.param, url=f"udpin:127.0.0.1:{port}"))
    link = MavlinkLink(f"udpout:127.0.0.1:{port}", autopilot(request.param))
    assert _wait(lambda: link.state.custom_mode is not None and link.state.position is not None
                 and link.state.lat is not None and link.state.gimbal is not None, vehicle)
    yield vehicle, link
    link.close()
    vehicle.close()


def test_the_vehicle_speaks_as_its_autopilot(vehicle_and_link):
    vehicle, link = vehicle_and_link
    assert vehicle.received.get("HEARTBEAT", 0) >= 1  # the companion's
    hold = "AUTO.LOITER" if vehicle.autopilot.name == "px4" else "LOITER"
    assert link.state.custom_mode == vehicle.autopilot.modes[hold] and link.state.armed
    np.testing.assert_allclose(link.state.position, [0.0, 0.0, -6.0], atol=0.05)
    assert abs(link.state.alt - (488.0 + 6.0)) < 0.01
    roll, pitch, _ = link.state.gimbal
    assert abs(pitch + math.radians(35.0)) < math.radians(8)  # the mount looks 35 deg down
    params = list(vehicle.params)
    link.conn.mav.param_request_read_send(1, 1, params[0].encode(), -1)
    assert _wait(lambda: "PARAM_VALUE" in link.received, vehicle)


def test_follow_target_over_the_wire_flies_the_vehicle_after_her(vehicle_and_link):
    vehicle, link = vehicle_and_link
    ap = vehicle.autopilot
    mode = ap.follow_mode["follow-target"]
    p1, p2, p3 = ap.set_mode_params(mode)
    if ap.name == "ardupilot":  # FOLLOW is refused until the operator enables it
        link.conn.mav.command_long_send(1, 1, 176, 0, p1, p2, p3, 0, 0, 0, 0)
        assert _wait(lambda: (176, 4) in vehicle.acks, vehicle)  # MAV_RESULT_FAILED
        link.conn.mav.param_set_send(1, 1, b"FOLL_ENABLE", 1.0, 9)
        assert _wait(lambda: vehicle.params["FOLL_ENABLE"] == 1.0, vehicle)
    link.conn.mav.command_long_send(1, 1, 176, 0, p1, p2, p3, 0, 0, 0, 0)
    assert _wait(lambda: link.state.custom_mode == ap.modes[mode], vehicle)
    assert (176, 0) in vehicle.acks
    c = FollowCommander(CommanderSettings(ap.name, "follow-target"))
    her = np.array([10.0, 0.0, 0.0])  # NED: 10 m north of home, on the ground
    link.clock = lambda: vehicle.time  # simulated time on both sides
    for k in range(150):  # 15 s at 10 Hz, she walks east at 1 m/s
        now = vehicle.time
        her[1] = k * 0.1
        c.on_event(Detected(tuple(ned_to_world(her))), now)
        link.send(c.tick(link.state, now), c.notes)
        for _ in range(2):
            vehicle.step(0.05)
            time.sleep(0.001)
    got = vehicle.target
    assert got is not None and np.linalg.norm(got.ned - her) < 0.3
    gap = np.linalg.norm((world_to_ned(vehicle.quad.position) - her)[:2])
    if ap.name == "px4":  # FLW_TGT_DST behind her, FLW_TGT_HT above
        assert abs(gap - vehicle.params["FLW_TGT_DST"]) < 2.0
    else:  # the offset it had when FOLLOW began
        assert abs(gap - math.hypot(10.0, 0.0)) < 2.5
    assert link.sent.get("follow_target", 0) == 150


def test_followme_follow_mavlink_from_a_video_streams_follow_target(tmp_path, caplog):
    """A video of a hero standing 9 m ahead of a hovering PX4 vehicle: the follower ranges her
    by the ground (no depth), and FOLLOW_TARGET reaches the vehicle at 5 Hz or more, where
    she stands. The live page shows her detected while it runs."""
    pytest.importorskip("pybullet")
    cv2 = pytest.importorskip("cv2")
    import threading

    from followme.follower.geometry import Camera, Pose
    from followme.follower.mavlink.run import follow_mavlink
    from followme.follower.sources import FrameSource, SourceSpec
    from followme.sim.quad import Quad
    from followme.sim.vehicle import SimVehicle, VehicleSettings
    from test_ranging import SIZE, _person_mask

    quad = Quad(position=np.array([0.0, 0.0, 6.0]), gimbal_pitch=35.0)
    port = _free_udp_port()
    vehicle = SimVehicle(quad, VehicleSettings("px4", url=f"udpin:127.0.0.1:{port}"))
    camera_pose = Pose(*quad.camera_position, 0.0, 35.0, 0.0)
    feet = np.array([9.0, 1.0, 0.0])
    mask = _person_mask(camera_pose, Camera(), feet)
    frame = np.full((SIZE, SIZE, 3), 90, np.uint8)
    frame[mask] = (255, 0, 0)
    video = tmp_path / "hero.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SIZE, SIZE))
    for _ in range(30):  # 3 s at 10 fps
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()

    stop = threading.Event()

    def fly():
        vehicle.set_mode("AUTO.FOLLOW_TARGET")
        vehicle._goal = lambda: (np.array([0.0, 0.0, -6.0]), None, None)  # it hovers, here
        while not stop.is_set():
            vehicle.step(0.02)
            time.sleep(0.02)

    flying = threading.Thread(target=fly, daemon=True)
    flying.start()
    page: dict = {}

    def look():  # the live page, from the URL the follower logs
        while not stop.is_set() and "status" not in page:
            urls = [r.getMessage().split()[-1] for r in caplog.records
                    if "live page is on" in r.getMessage()]
            if urls:
                with contextlib.suppress(OSError):
                    status = json.loads(urllib.request.urlopen(urls[0] + "status.json",
                                                               timeout=2).read())
                    if status["state"] == "detected":
                        page["status"] = status
                        page["jpeg"] = urllib.request.urlopen(urls[0] + "frame.jpg",
                                                              timeout=2).read()
            time.sleep(0.05)

    looking = threading.Thread(target=look, daemon=True)
    looking.start()
    from follower_helpers import ColourSegmenter

    caplog.set_level(logging.INFO, logger="followme.follower.mavlink")
    start = time.monotonic()
    counts = follow_mavlink(ColourSegmenter(160), FrameSource(SourceSpec.parse(f"video:{video}")),
                            f"udpout:127.0.0.1:{port}", CommanderSettings("px4"),
                            FollowConfig(port=0), command_log=tmp_path / "sent.jsonl")
    seconds = time.monotonic() - start
    stop.set()
    flying.join(2.0)
    looking.join(2.0)
    vehicle.close()
    assert counts["frames"] == 30 and counts["detected"] >= 20
    assert page["status"]["title"] == "followme follow --mavlink"
    assert page["status"]["figures"]["detected"] >= 1 and page["jpeg"][:2] == b"\xff\xd8"
    sent = [json.loads(line) for line in (tmp_path / "sent.jsonl").read_text().splitlines()]
    # every command is in the log, the link's own SET_MESSAGE_INTERVAL for the gimbal too
    [interval] = [m for m in sent if m["msg"] == "command_long"]
    assert (interval["command"], interval["param1"], interval["param2"]) == (511, 285, 1e5)
    assert (interval["target_system"], interval["target_component"]) == (1, 1)
    targets = [m for m in sent if m["msg"] == "follow_target"]
    span = targets[-1]["t"] - targets[0]["t"]
    assert len(targets) >= 10 and (len(targets) - 1) / span >= 5.0  # 5 Hz or more
    assert span > seconds - 1.5
    got = vehicle.target
    assert got is not None and np.linalg.norm(got.ned[:2] - [feet[0], -feet[1]]) < 0.1 * 9.0


def test_on_lost_hold_keeps_her_last_position_in_the_operators_mode_and_goes_on_after():
    c = FollowCommander(CommanderSettings("ardupilot", "follow-target", on_lost="hold",
                                          grace=2.0))
    state = _state(ARDUPILOT, "FOLLOW")
    for k in range(5):  # walking north at 1 m/s
        c.on_event(_her(5.0 + k * 0.2, 0.0), 100.0 + k * 0.2)
    moving = c.tick(state, 100.8)[0][1]
    assert moving["vel"][0] > 0.5
    state.heard = state.position_time = 103.0
    [(name, held)] = c.tick(state, 103.0)  # 2.2 s without her: no mode change
    assert name == "follow_target" and held["vel"] == [0.0, 0.0, 0.0]
    assert "holding at her last position" in c.notes[-1]
    north, _ = global_to_offset(47.4, 8.5, held["lat"] / 1e7, held["lon"] / 1e7)
    assert 5.5 < north < 6.2  # where she was last seen, not walked on
    c.on_event(_her(8.0, 0.0), 104.0)
    [(_, back)] = c.tick(state, 104.0)
    assert abs(global_to_offset(47.4, 8.5, back["lat"] / 1e7, back["lon"] / 1e7)[0] - 8.0) < 0.05
    assert c.notes[-1] == "she is back: following"


def test_a_detection_she_cannot_have_walked_to_is_set_aside_unless_it_is_confirmed():
    c = FollowCommander(CommanderSettings("px4", "follow-target"))
    state = _state(PX4, "AUTO.FOLLOW_TARGET")
    for k in range(5):  # walking north at 1 m/s
        c.on_event(_her(5.0 + k * 0.2, 0.0), 100.0 + k * 0.2)
    c.on_event(_her(5.9, 4.0), 101.0)  # someone 4 m to her east
    assert c.hero.set_aside == 1
    assert abs(c.hero.position[1]) < 0.1 and np.linalg.norm(c.hero.velocity) < 1.5
    for k in range(1, 3):  # ... two more there: three agree, so that is where she is
        c.on_event(_her(5.9, 4.0 + 0.1 * k), 101.0 + 0.2 * k)
    assert abs(c.hero.position[1] - 4.2) < 0.05 and c.hero.set_aside == 3
    (_, f), = c.tick(state, 101.4)
    assert abs(global_to_offset(47.4, 8.5, f["lat"] / 1e7, f["lon"] / 1e7)[1] - 4.2) < 0.05


def test_the_follower_asks_for_the_gimbal_at_10_hz_and_the_vehicle_obeys(vehicle_and_link):
    vehicle, link = vehicle_and_link
    assert _wait(lambda: vehicle.rates["GIMBAL_DEVICE_ATTITUDE_STATUS"] == 10.0, vehicle)
    assert (511, 0) in vehicle.acks


def test_bad_or_stale_input_commands_nothing():
    c = FollowCommander(CommanderSettings("px4", "setpoints"))
    c.on_event(Detected((float("nan"), 0.0, 0.0)), 100.0)
    assert c.hero is None and "finite" in c.notes[-1]
    old = _state(PX4, "OFFBOARD")
    old.position_time = 90.0  # no LOCAL_POSITION_NED for 10 s
    c.on_event(_her(5.0, 0.0), 100.0)
    assert c.tick(old, 100.0) == []


def test_a_stale_hero_is_not_flown_to_when_the_operator_selects_the_mode_again():
    c = FollowCommander(CommanderSettings("ardupilot", "setpoints", on_lost="land"))
    c.on_event(_her(5.0, 0.0), 100.0)
    loiter = _state(ARDUPILOT, "LOITER", (0.0, 0.0, -6.0))
    loiter.heard = loiter.position_time = 160.0
    assert c.tick(loiter, 160.0) == []
    guided = _state(ARDUPILOT, "GUIDED", (0.0, 0.0, -6.0))
    guided.heard = guided.position_time = 160.2
    [(name, f)] = c.tick(guided, 160.2)  # a minute later: stay put, no LAND either
    assert name == "set_position_target_local_ned" and (f["x"], f["y"], f["z"]) == (0, 0, -6)


def test_setpoints_never_go_below_the_floor_and_stay_put_beyond_range():
    c = FollowCommander(CommanderSettings("ardupilot", "setpoints", height=1.0, max_range=30.0,
                                          max_speed=100.0))
    state = _state(ARDUPILOT, "GUIDED", (-5.0, 0.0, -3.0))
    c.on_event(Detected(tuple(ned_to_world([0.0, 0.0, 0.5]))), 100.0)  # her "height" below 0
    [(_, f)] = c.tick(state, 100.0)
    assert f["z"] == -2.0  # MIN_HEIGHT above the local origin, not her 0.5 m below it + 1 m
    far = FollowCommander(CommanderSettings("ardupilot", "setpoints", max_range=30.0))
    far.on_event(_her(50.0, 0.0), 100.0)
    [(name, g)] = far.tick(state, 100.0)
    assert name == "set_position_target_local_ned" and (g["x"], g["y"]) == (-5.0, 0.0)


def test_the_gimbal_flags_say_which_frame_its_yaw_is_in():
    pytest.importorskip("pymavlink")
    from pymavlink.dialects.v20 import all as mavlink

    from followme.follower.mavlink.autopilots import autopilot
    from followme.follower.mavlink.link import MavlinkLink

    link = MavlinkLink.__new__(MavlinkLink)  # the parser alone, no connection
    link.autopilot, link.vehicle_sysid, link.clock = autopilot("ardupilot"), 1, time.monotonic
    link.state, link.received, link.rejected = VehicleState(), {}, {}
    q = list(euler_to_quaternion(0.0, -0.5, 0.3))
    for flags, earth in ((64, True), (32, False), (16 | 32, False), (16, True), (0, False)):
        msg = mavlink.MAVLink_gimbal_device_attitude_status_message(0, 0, 0, flags, q, 0, 0, 0, 0)
        msg._header = mavlink.MAVLink_header(msg.id, srcSystem=1)
        link.on_message(msg)
        assert link.state.gimbal_earth_yaw is earth, flags
    bad = mavlink.MAVLink_gimbal_device_attitude_status_message(
        0, 0, 0, 64, [float("nan"), 0, 0, 0], 0, 0, 0, 0)
    bad._header = mavlink.MAVLink_header(bad.id, srcSystem=1)
    link.on_message(bad)
    assert link.rejected == {"GIMBAL_DEVICE_ATTITUDE_STATUS": 1}


def test_a_downward_rangefinder_puts_the_ground_under_her():
    """A camera without depth ranges her by the ground. On a hill 4 m above the take-off
    point, flat ground at the local origin puts her far off; the vehicle's downward
    DISTANCE_SENSOR puts her where she stands. Readings looking elsewhere, out of range or
    stale are not used."""
    pytest.importorskip("pymavlink")
    from pymavlink.dialects.v20 import all as mavlink

    from follower_helpers import ColourSegmenter
    from followme.follower.mavlink.autopilots import autopilot
    from followme.follower.mavlink.follower import GROUND_FRESH, MavlinkFollower
    from followme.follower.mavlink.link import MavlinkLink
    from test_ranging import SIZE, _person_mask

    link = MavlinkLink.__new__(MavlinkLink)  # the parser alone, no connection
    link.autopilot, link.vehicle_sysid, link.clock = autopilot("px4"), 1, time.monotonic
    link.state, link.received, link.rejected = VehicleState(), {}, {}

    def distance(cm: int, orientation: int = 25):
        msg = mavlink.MAVLink_distance_sensor_message(0, 20, 4000, cm, 0, 0, orientation, 0)
        msg._header = mavlink.MAVLink_header(msg.id, srcSystem=1)
        link.on_message(msg)

    distance(600, orientation=0)     # looking forward
    distance(5000)                   # beyond its 40 m
    assert link.state.ground_below is None
    distance(400)
    assert link.state.ground_below == 4.0

    link.state.position = np.array([0.0, 0.0, -10.0])   # 10 m above the take-off point
    link.state.attitude = (0.0, 0.0, 0.0)
    follower = MavlinkFollower(ColourSegmenter(160), link,
                               FollowCommander(CommanderSettings("px4")), mount_pitch=35.0)
    feet = np.array([9.0, 0.0, 6.0])  # 9 m north, on the hill 4 m under the vehicle
    mask = _person_mask(follower.camera_pose(), follower.config.camera, feet)
    frame = np.full((SIZE, SIZE, 3), 90, np.uint8)
    frame[mask] = (255, 0, 0)

    event = follower.process(frame)
    assert isinstance(event, Detected)
    assert np.linalg.norm(np.asarray(event.world[:2]) - feet[:2]) < 0.1 * 9.0, event.world
    link.state.ground_time -= GROUND_FRESH + 0.5       # stale: flat ground at the origin again
    assert follower.ground_z() == 0.0
    flat = follower.process(frame)
    assert flat is None or np.linalg.norm(np.asarray(flat.world[:2]) - feet[:2]) > 2.0


def test_bad_settings_name_their_flag():
    with pytest.raises(ValueError, match="--grace -1: must be at least 0"):
        CommanderSettings(grace=-1.0)
    with pytest.raises(ValueError, match="--on-lost fly: choose hold, land or rtl"):
        CommanderSettings(on_lost="fly")


# ---- --source ----

def test_source_quadsim_is_the_default_and_refused_with_mavlink(capsys):
    from followme.cli import build_parser, main
    from followme.follower.sources import QUADSIM, FrameSource, SourceSpec, source_for

    assert build_parser(["follow"]).parse_args(["follow"]).source == QUADSIM == "quadsim"
    assert SourceSpec.parse("quadsim") == SourceSpec("quadsim", "")
    assert source_for("quadsim", None).kind == "quadsim"
    assert source_for("video:x.mp4", "udpout:127.0.0.1:14540") == SourceSpec("video", "x.mp4")
    with pytest.raises(ValueError, match=r"^--source quadsim \(the default\) with --mavlink"):
        source_for("quadsim", "udpout:127.0.0.1:14540")
    with pytest.raises(ValueError, match=r"^--source camera:0: .*add --mavlink URL"):
        source_for("camera:0", None)
    with pytest.raises(ValueError, match="QuadSim's frames come over Socket.IO"):
        FrameSource(SourceSpec.parse("quadsim"))
    # on the command line: one line, exit 2, before any model loads
    for argv, flag in ((["follow", "--mavlink", "udpout:127.0.0.1:14540"], "--source quadsim"),
                       (["follow", "--source", "quadsim", "--mavlink", "udpin:0.0.0.0:14540"],
                        "--source quadsim"),
                       (["follow", "--source", "camera:0"], "--source camera:0")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"followme: error: {flag}") and err.count("\n") == 1, err


# ---- ArduPilot: body frames in GUIDED, GLOBAL_POSITION_INT in FOLLOW ----

def _ardupilot(params: dict | None = None, position=(10.0, -5.0, 6.0), yaw: float = 0.0):
    """An ArduPilot SimVehicle on a free port of 127.0.0.1, and a function that makes a
    pymavlink sender of a given system id to it."""
    pytest.importorskip("pybullet")
    from pymavlink import mavutil

    from followme.sim.quad import Quad
    from followme.sim.vehicle import SimVehicle, VehicleSettings

    quad = Quad(position=np.array(position, float), yaw=yaw, gimbal_pitch=35.0)
    vehicle = SimVehicle(quad, VehicleSettings("ardupilot", url="udpin:127.0.0.1:0",
                                               params=params or {}))
    port = vehicle.conn.port.getsockname()[1]

    def sender(sysid: int):
        return mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=sysid,
                                          source_component=191, dialect="all")
    return vehicle, sender


def _arrive(vehicle, kind: str, n: int) -> None:
    """Until the vehicle has handled ``n`` messages of ``kind`` (it does not move meanwhile)."""
    deadline = time.monotonic() + 5.0
    while vehicle.received.get(kind, 0) < n:
        assert time.monotonic() < deadline, f"{kind} {n} did not arrive"
        vehicle.pump()
        time.sleep(0.002)


def test_ardupilot_guided_takes_body_frames_turned_by_its_heading():
    from followme.follower.mavlink.commander import POSITION_AND_YAW

    # 10 m north, 5 m east, 6 m up, facing east (the sim's world yaw -90: y is west)
    vehicle, sender = _ardupilot(yaw=-90.0)
    companion = sender(245)
    kind = "SET_POSITION_TARGET_LOCAL_NED"
    sent = 0

    def setpoint(frame: int, x: float, y: float, z: float, yaw: float = 0.0):
        nonlocal sent
        companion.mav.set_position_target_local_ned_send(0, 1, 1, frame, POSITION_AND_YAW,
                                                         x, y, z, 0, 0, 0, 0, 0, 0, yaw, 0)
        sent += 1
        _arrive(vehicle, kind, sent)
        return vehicle.setpoint

    try:
        assert setpoint(1, 1.0, 2.0, -3.0) is None  # LOITER: not taken (only in GUIDED)
        vehicle.set_mode("GUIDED")
        for frame in (8, 9):  # BODY_NED, BODY_OFFSET_NED: forward 4, right 2, up 1, from here
            got = setpoint(frame, 4.0, 2.0, -1.0, yaw=0.5)
            np.testing.assert_allclose(got.ned, [10.0 - 2.0, 5.0 + 4.0, -6.0 - 1.0], atol=1e-6)
            assert got.yaw == pytest.approx(math.pi / 2 + 0.5)  # relative to its heading
        got = setpoint(7, 1.0, 2.0, 0.0, yaw=0.3)  # LOCAL_OFFSET_NED: north-east, from here
        np.testing.assert_allclose(got.ned, [11.0, 7.0, -6.0], atol=1e-6)
        assert got.yaw == pytest.approx(0.3)
        got = setpoint(1, 3.0, 4.0, -5.0)  # LOCAL_NED: where it says
        np.testing.assert_allclose(got.ned, [3.0, 4.0, -5.0], atol=1e-6)
        got = setpoint(6, 3.0, 4.0, -5.0)  # GLOBAL_RELATIVE_ALT_INT here: "input not valid"
        np.testing.assert_allclose(got.ned, [10.0, 5.0, -6.0], atol=1e-6)  # stop where it is
        assert got.yaw is None
        setpoint(8, 4.0, 0.0, 0.0, yaw=math.pi / 2)  # 4 m ahead (east), then face south
        for _ in range(160):  # 8 s
            vehicle.step(0.05)
        np.testing.assert_allclose(world_to_ned(vehicle.quad.position), [10.0, 9.0, -6.0],
                                   atol=0.3)
        assert abs((-vehicle.quad.yaw) % 360 - 180.0) < 3.0
        vehicle.set_mode("LOITER")
        vehicle.set_mode("GUIDED")  # entering GUIDED again: it holds, the old target is gone
        assert vehicle.setpoint is None
    finally:
        companion.close()
        vehicle.close()


def test_ardupilot_follow_takes_global_position_int_from_foll_sysid():
    from followme.sim.vehicle import HOME

    vehicle, sender = _ardupilot({"FOLL_ENABLE": 1.0, "FOLL_SYSID": 7.0})
    lead, other = sender(7), sender(8)
    lat, lon = offset_to_global(HOME[0], HOME[1], 20.0, 5.0)
    kind, sent = "GLOBAL_POSITION_INT", 0

    def position(conn, alt_mm: int = 490_000, relative_mm: int = 3000, hdg: int = 9000,
                 la: float = lat, lo: float = lon, vn: int = 100):
        nonlocal sent
        conn.mav.global_position_int_send(1000, round(la * 1e7), round(lo * 1e7), alt_mm,
                                          relative_mm, vn, 0, 0, hdg)
        sent += 1
        _arrive(vehicle, kind, sent)
        return vehicle.target

    try:
        assert position(other) is None  # not FOLL_SYSID
        got = position(lead)  # FOLL_ALT_TYPE 1 (default): her height above home
        np.testing.assert_allclose(got.ned, [20.0, 5.0, -3.0], atol=0.01)
        np.testing.assert_allclose(got.velocity, [1.0, 0.0, 0.0])  # cm/s
        assert got.yaw == pytest.approx(math.pi / 2)  # hdg in cdeg
        assert position(lead, hdg=65535).yaw is None  # heading unknown
        vehicle.params["FOLL_ALT_TYPE"] = 0.0  # AMSL
        assert position(lead).ned[2] == pytest.approx(HOME[2] - 490.0)
        vehicle.params["FOLL_ALT_TYPE"] = 1.0
        vehicle.target = None
        assert position(lead, la=0.0, lo=0.0) is None  # lat and lon 0: no fix yet
        vehicle.params["FOLL_ENABLE"] = 0.0
        vehicle.target = None
        assert position(lead) is None  # AP_Follow takes nothing while disabled
        vehicle.params["FOLL_ENABLE"] = 1.0
        # FOLLOW after her: she walks north at 1 m/s; the offset is where it was at the first fix
        vehicle.set_mode("FOLLOW")
        start = world_to_ned(vehicle.quad.position)
        for k in range(80):  # 8 s at 10 Hz
            la, _ = offset_to_global(HOME[0], HOME[1], 20.0 + 0.1 * k, 5.0)
            position(lead, la=la)
            vehicle.step(0.1)
        moved = world_to_ned(vehicle.quad.position) - start
        assert 6.0 < moved[0] < 9.0 and abs(moved[1]) < 0.5, moved
    finally:
        lead.close()
        other.close()
        vehicle.close()


def test_px4_takes_no_global_position_int_as_a_target():
    pytest.importorskip("pybullet")
    from pymavlink import mavutil

    from followme.sim.quad import Quad
    from followme.sim.vehicle import SimVehicle, VehicleSettings

    vehicle = SimVehicle(Quad(position=np.array([0.0, 0.0, 6.0])),
                         VehicleSettings("px4", url="udpin:127.0.0.1:0"))
    port = vehicle.conn.port.getsockname()[1]
    lead = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=7,
                                      dialect="all")
    try:
        lead.mav.global_position_int_send(1000, 473980000, 85460000, 490000, 2000, 0, 0, 0, 0)
        _arrive(vehicle, "GLOBAL_POSITION_INT", 1)
        assert vehicle.target is None
    finally:
        lead.close()
        vehicle.close()
