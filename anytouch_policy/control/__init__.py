"""The ROS-free halves of the nodes: the arm's safety filter and control loop, 5 Hz tick timing, the live stream
encoder, keyboard teleop. Nothing is re-exported, so `import anytouch_policy.control.safety` loads no torch."""
