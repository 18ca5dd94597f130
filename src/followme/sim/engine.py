"""The physics/render engine, PyBullet, imported in one place with an install hint."""

try:
    import pybullet
except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError(
        "followme's simulator needs PyBullet: pip install pybullet==3.2.7 "
        "(or the package's [sim] extra)") from e

__all__ = ["pybullet"]
