"""The UFACTORY xArm 6 as an Arm (mode 7 streaming about a calibrated tool axis, controller safety settings, SDK
error names) and the Robotiq 2F-140 as a Gripper, which runs over the xArm's tool RS-485. The xarm-python-sdk is
imported only when a device opens."""
