"""Closed-loop evaluation on the simulated rig in one place: the rollout harness for any policy (rollout) and a
policy bundle driven through PolicyRuntime (policy)."""
