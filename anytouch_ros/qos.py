"""Named QoS profiles: every publisher and subscription of the package picks one of these, by role.

Compatibility rules that shaped them (DDS request/offer): a RELIABLE reader only matches a RELIABLE writer, a
TRANSIENT_LOCAL reader only matches a TRANSIENT_LOCAL writer; the reverse pairs match. So our writers offer the
stronger policy and each reader asks only for what it needs. A mismatch is silent in DDS, so the recorder also
logs rclpy's "incompatible QoS" events.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: Tactile images and embeddings, publisher side. REP 2003 asks sensor drivers to publish RELIABLE so that both
#: reliable readers (the recorder, which wants every frame) and best-effort readers (the encoder) can match.
#: KEEP_LAST 5 bounds memory at ~1 MB per 320 x 240 stream; VOLATILE because an old frame is never useful later.
IMAGE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.VOLATILE)

#: Live consumers of images that only want the newest frames (encoder): BEST_EFFORT matches any writer and never
#: asks for retransmission of a frame that would be stale by the time it arrived (the SensorDataQoS of REP 2003).
IMAGE_LATEST = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
                          durability=DurabilityPolicy.VOLATILE)

#: pour/action and pour/cartesian_step. RELIABLE: steps are relative rotations, so a lost step is a lost 0.25 deg.
#: VOLATILE on purpose: an arm node that (re)starts must never receive an old step replayed from history.
#: KEEP_LAST 10 (2 s at 5 Hz) rides out a briefly busy reader; the arm's command timeout handles silence.
COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)

#: Measured state: arm/tilt, arm/pose, scale/mass, sim/state. RELIABLE so the recorder logs every sample, KEEP_LAST
#: 10 so a slow reader drops the oldest (a controller wants the newest), VOLATILE: a stale reading is not state.
STATE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.VOLATILE)

#: sim/state (100-200 Hz): a simulated camera renders each frame from the newest state at or before its stamp, so
#: states lost in a burst (a process stalled for a moment) change frames. KEEP_LAST 200 holds 1-2 s of them: 50
#: (0.25-0.5 s) lost states, and so changed frames, on a 2-core machine running two other CPU-bound jobs.
SIM_STATE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)

#: Latched events: arm/estop and episode/event. TRANSIENT_LOCAL + KEEP_LAST 1 = the last value is handed to readers
#: that match later, so an e-stop or an episode start pressed while discovery is still running (0.5-3.6 s measured)
#: is not lost; a restarted arm node comes up e-stopped. Readers must ask for TRANSIENT_LOCAL to get the history,
#: and judge its age (rclpy MessageInfo source_timestamp): the recorder ignores stale episode events.
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: /diagnostics, as diagnostic_updater publishes it: reliable, shallow, volatile (aggregators want the newest).
DIAGNOSTICS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)


def record(depth: int) -> QoSProfile:
    """Recorder subscriptions: RELIABLE (matches every writer above except a foreign best-effort one, which the
    recorder reports) and VOLATILE (history of latched topics belongs to the episode it was published in). `depth`
    is the reader queue that absorbs bursts while the executor is busy; the writer thread has its own queue."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
