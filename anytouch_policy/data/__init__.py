"""Episodes as rosbag2 directories: writing, reading, topic names and message conversions."""

from anytouch_policy.data.episode import (
    Episode,
    EpisodeMeta,
    EpisodeScan,
    EpisodeWriter,
    read_episode,
    scan_episodes,
)

__all__ = ["Episode", "EpisodeMeta", "EpisodeScan", "EpisodeWriter", "read_episode", "scan_episodes"]
