"""The QuadSim transport: its Socket.IO wire (``protocol.py``: sensor_frame in; object_detected,
create_box_marker, delete_marker and object_lost out) and the server it connects to
(``server.py``)."""
