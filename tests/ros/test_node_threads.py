"""The nodes that load torch start with OpenMP threads that sleep when idle and the thread counts meant for them:
the encoder takes its `threads` parameter (0 = one per core), the policy node one thread for its small head.

libgomp reports its settings at load (OMP_DISPLAY_ENV=VERBOSE); the node logs torch's thread count at start-up.
The test process's own OMP_WAIT_POLICY is taken out of the nodes' environment, as a user's shell would not have it.
"""

import os

import pytest


@pytest.mark.parametrize(("threads", "expected"), [(0, len(os.sched_getaffinity(0))), (1, 1)])
def test_the_encoder_and_policy_nodes_sleep_idle_threads_and_use_their_thread_counts(
        start_node, ros_env, monkeypatch, pour_policy, threads, expected):
    monkeypatch.delitem(ros_env, "OMP_WAIT_POLICY", raising=False)
    monkeypatch.delitem(ros_env, "GOMP_SPINCOUNT", raising=False)
    monkeypatch.setitem(ros_env, "OMP_DISPLAY_ENV", "VERBOSE")
    encoder = start_node("anytouch_ros.encoder_node", params={"policy": str(pour_policy), "device": "cpu",
                                                              "threads": threads})
    policy = start_node("anytouch_ros.policy_node", params={"bundle": str(pour_policy)})
    for node, count in ((encoder, expected), (policy, 1)):
        plural = "" if count == 1 else "s"
        node.wait_for_output(rf"\b{count} torch thread{plural}, OMP_WAIT_POLICY=PASSIVE", timeout_s=90)
        assert "GOMP_SPINCOUNT = '0'" in node.output()  # libgomp's own report; its default would be 300000
