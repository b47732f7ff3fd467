"""Thin rclpy nodes over anytouch_policy: parameters, topics, QoS, timers; one module per node plus shared plumbing."""

__all__: list[str] = []
