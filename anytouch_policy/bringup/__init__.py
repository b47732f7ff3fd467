"""Bringing up a node set: the node plan (plan) that `anytouch bringup` runs and the launch files build
(launch), the supervisor of its processes, and the backends a node builds from its parameters (backends: real
hardware and the simulated rig, so this package sits above both). Nothing is re-exported: a launch file imports
the plan without the simulator."""
