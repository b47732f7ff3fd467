"""Episode bags written in other tools' dataset formats (LeRobotDataset v3.0); no ROS, no network."""
