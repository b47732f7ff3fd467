"""ROS-free core of anytouch_ros: AnyTouch encoder, pouring policy, episode data, simulated rig, device backends."""

__all__ = ["__version__"]

__version__ = "0.1.0"
