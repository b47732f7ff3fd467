"""Tactile cameras: GelSight Mini and DIGIT as TactileSources, over one grabber thread per camera (OpenCV reader,
V4L2 device checks). Vendor SDKs are imported only when a device opens."""
