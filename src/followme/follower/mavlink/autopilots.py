"""PX4's and ArduPilot's flight modes, as their HEARTBEATs say them and DO_SET_MODE sets them.

PX4 packs a main and a sub mode into ``custom_mode``: (main << 16) | (sub << 24)
(``px4_custom_mode.h``); ArduPilot Copter numbers its modes (``mode.h``). Each follower command
has the mode in which the autopilot obeys it:

  follow-target   FOLLOW_TARGET (#144)               PX4 AUTO.FOLLOW_TARGET, ArduPilot FOLLOW
  setpoints       SET_POSITION_TARGET_LOCAL_NED      PX4 OFFBOARD, ArduPilot GUIDED
"""

from __future__ import annotations

from dataclasses import dataclass

MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
AUTOPILOTS = ("px4", "ardupilot")
COMMANDS = ("follow-target", "setpoints")
ON_LOST = ("hold", "land", "rtl")
MAV_AUTOPILOT = {"px4": 12, "ardupilot": 3}  # MAV_AUTOPILOT_PX4, MAV_AUTOPILOT_ARDUPILOTMEGA


def px4_mode(main: int, sub: int = 0) -> int:
    return (main << 16) | (sub << 24)


# PX4: main modes POSCTL 3, AUTO 4, OFFBOARD 6; AUTO sub modes LOITER 3, RTL 5, LAND 6,
# FOLLOW_TARGET 8
PX4_MODES = {"POSCTL": px4_mode(3), "OFFBOARD": px4_mode(6), "AUTO.LOITER": px4_mode(4, 3),
             "AUTO.RTL": px4_mode(4, 5), "AUTO.LAND": px4_mode(4, 6),
             "AUTO.FOLLOW_TARGET": px4_mode(4, 8)}
ARDUPILOT_MODES = {"STABILIZE": 0, "ALT_HOLD": 2, "GUIDED": 4, "LOITER": 5, "RTL": 6, "LAND": 9,
                   "BRAKE": 17, "FOLLOW": 23}


@dataclass(frozen=True)
class Autopilot:
    name: str
    modes: dict[str, int]
    follow_mode: dict[str, str]  # command -> the mode that obeys it
    lost_mode: dict[str, str]  # --on-lost -> the mode to set

    def set_mode_params(self, mode: str) -> tuple[float, float, float]:
        """MAV_CMD_DO_SET_MODE's param1-3 for a mode: PX4 takes the main and sub mode, ArduPilot
        its mode number."""
        custom = self.modes[mode]
        if self.name == "px4":
            return MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, (custom >> 16) & 0xFF, (custom >> 24) & 0xFF
        return MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, custom, 0

    def mode_of(self, param2: float, param3: float) -> int | None:
        """The custom mode that DO_SET_MODE's param2 and param3 ask for (None: not one of ours)."""
        custom = px4_mode(int(param2), int(param3)) if self.name == "px4" else int(param2)
        return custom if custom in self.modes.values() else None

    def mode_name(self, custom_mode: int) -> str:
        for name, value in self.modes.items():
            if value == custom_mode:
                return name
        return f"custom {custom_mode}"


PX4 = Autopilot("px4", PX4_MODES,
                {"follow-target": "AUTO.FOLLOW_TARGET", "setpoints": "OFFBOARD"},
                {"hold": "AUTO.LOITER", "land": "AUTO.LAND", "rtl": "AUTO.RTL"})
ARDUPILOT = Autopilot("ardupilot", ARDUPILOT_MODES,
                      {"follow-target": "FOLLOW", "setpoints": "GUIDED"},
                      {"hold": "BRAKE", "land": "LAND", "rtl": "RTL"})


def autopilot(name: str) -> Autopilot:
    if name not in AUTOPILOTS:
        raise ValueError(f"--autopilot {name}: choose px4 or ardupilot")
    return PX4 if name == "px4" else ARDUPILOT
