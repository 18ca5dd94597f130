"""The MAVLink transport: the follow core's Detected / Lost -> commands to a PX4 or ArduPilot
autopilot.

  frames.py     the vehicle's local NED frame <-> the follower's world (x north, y west, z up),
                MAVLink attitudes <-> ``geometry.Pose``, local offsets -> lat/lon
  autopilots.py PX4's and ArduPilot's custom modes: which mode follows, which holds, lands,
                returns
  commander.py  Detected / Lost + the vehicle's state -> the messages to send, with the safety
                rules (the operator's mode only, limits, geofence, on-lost after a grace period)
  link.py       the MAVLink connection (pymavlink): companion HEARTBEAT, telemetry in, a log of
                every command sent
"""
