"""Error hierarchy. Every message names the file, field, parameter or device it is about."""


class AnyTouchError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(AnyTouchError, ValueError):
    """A parameter, preset or config field is missing, of the wrong type or contradicts another."""


class CheckpointError(AnyTouchError):
    """A checkpoint file is missing, truncated, not a checkpoint, or does not map onto the encoder."""


class BundleError(AnyTouchError):
    """A model or policy bundle folder (config.json + model.safetensors) is missing or inconsistent."""


class EpisodeError(AnyTouchError):
    """A recorded episode (rosbag2 directory) is missing a topic, corrupt or incomplete."""


class TrainingError(AnyTouchError):
    """Training cannot go on: a loss or an input became NaN or inf (nothing is saved from such a run)."""


class DeviceError(AnyTouchError):
    """A device backend failed: open, read, command or bring-up."""


class DeviceNotConnectedError(DeviceError):
    """A device method was called before connect()/open(); call it first."""


class MessageError(AnyTouchError, ValueError):
    """A ROS message does not have the layout a conversion needs (encoding, size, frame, rotation axis)."""
