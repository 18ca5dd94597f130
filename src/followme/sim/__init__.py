"""The simulated world for follow-me: a park with a walking crowd and a hero in red, a point-mass
quad with a gimbal camera, ``followme sim record``, and the closed loop (``sim follow``,
``sim serve``, ``followme demo``).

Data flow, one job per module:

  assets.py   procedural textures and meshes (cached PNG/OBJ files), clothing palettes, the
              DeepMimic humanoid and walk clip from pybullet_data
  motion.py   the walk clip: Y-up -> Z-up, loop and drift removal, pose at a time (numpy only)
  engine.py   PyBullet, imported in one place with an install hint
  world.py    World: ground, buildings, trees, people + hero walking on paths (owns a PyBullet
              DIRECT client), body id -> label table, lighting per scenario
  camera.py   the 256x256 gimbal camera: RGB, metric depth, labels from TinyRenderer (poses are
              follower/geometry.py's Pose)
  quad.py     point-mass quad with speed/acceleration/yaw-rate limits, gimbal, patrol (numpy only)
  record.py   ``followme sim record``: frames -> the RoboND layout (images/, masks/)

The closed loop, sensor frame -> follower -> Detected / Lost -> controller -> quad:

  sensor.py   Frame -> QuadSim's sensor_frame fields (JPEG, depth PNG, pose strings)
  link.py     the follower in process, or over QuadSim's wire as its client
  control.py  FollowController: patrol / follow / hold / search from the follower's answers
  metrics.py  truth-based figures: hero in view, distance, losses, wrong targets
  loop.py     ClosedLoop and run_loop (simulated time, lock-step); OracleSegmenter
  serve.py    ``followme sim serve``: the sim as QuadSim, in real time, for any follower
  video.py    camera view + top-down map -> MP4/GIF (imageio), and the run's plot
  report.py   a run to files: metrics.json, frames.csv, run.png, the video
  commands.py the ``sim follow`` and ``sim serve`` command lines

World frame everywhere: ROS (REP 103), x forward, y left, z up, metres; the ground is z = 0.
"""
