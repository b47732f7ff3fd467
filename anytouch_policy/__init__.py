"""ROS-free core of anytouch_ros: AnyTouch encoder, pouring policy, episode data, simulated rig, device backends."""

from anytouch_policy import threads as _threads

_threads.apply_env_defaults()  # before anything imports torch: libgomp reads its environment once (threads.py)

__all__ = ["__version__"]

__version__ = "0.1.0"
