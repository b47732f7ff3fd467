"""Episodes as rosbag2 directories: writing, reading, topic names, message conversions and training samples."""

from anytouch_policy.data.episode import (
    Episode,
    EpisodeMeta,
    EpisodeScan,
    EpisodeWriter,
    read_episode,
    scan_episodes,
)
from anytouch_policy.data.samples import (
    EpisodeSet,
    EpisodeTicks,
    WindowSpec,
    align_episode,
    collect_episodes,
    policy_sensors,
    split_episodes,
)

__all__ = [
    "Episode",
    "EpisodeMeta",
    "EpisodeScan",
    "EpisodeSet",
    "EpisodeTicks",
    "EpisodeWriter",
    "WindowSpec",
    "align_episode",
    "collect_episodes",
    "policy_sensors",
    "read_episode",
    "scan_episodes",
    "split_episodes",
]
