"""Every anytouch process starts torch's OpenMP threads sleeping when idle (OMP_WAIT_POLICY=PASSIVE, spin count 0),
a user's own setting wins, and the thread counts asked for are the ones torch uses.

Each check runs a fresh process with libgomp's own report of its settings (OMP_DISPLAY_ENV=VERBOSE on stderr),
because the policy is fixed when libgomp loads: this test process's environment already has it, so it is removed
from the children's environment first.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from anytouch_policy.errors import ConfigError
from anytouch_policy.threads import ENV_DEFAULTS, set_torch_threads

ROOT = Path(__file__).resolve().parents[1]
BENCH = ["bench", "encoder", "--presets", "anytouch-tiny", "--devices", "cpu", "--batches", "1", "--seconds", "0",
         "--min-iters", "1", "--max-iters", "1", "--threads", "2"]


def fresh_env(**extra: str) -> dict[str, str]:
    """This environment less every OpenMP setting (as a user's shell has it), plus libgomp's report and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_DISPLAY_ENV": "VERBOSE", **extra}


def libgomp_settings(stderr: str) -> dict[str, str]:
    """OMP_DISPLAY_ENV's report: {'OMP_WAIT_POLICY': 'PASSIVE', 'GOMP_SPINCOUNT': '0', ...}."""
    assert "OPENMP DISPLAY ENVIRONMENT BEGIN" in stderr, stderr[-2000:]
    return dict(re.findall(r"^\s+(\w+) = '([^']*)'", stderr, flags=re.M))


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_the_defaults_are_what_the_docs_promise():
    assert ENV_DEFAULTS == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_a_fresh_anytouch_process_sleeps_idle_openmp_threads_and_uses_the_threads_asked_for():
    result = run([sys.executable, "-m", "anytouch_policy.cli.main", *BENCH], fresh_env())
    gomp = libgomp_settings(result.stderr)
    assert gomp["GOMP_SPINCOUNT"] == "0"  # libgomp's default without a policy: 300000
    settings = json.loads(result.stdout)["thread_settings"]
    assert settings["OMP_WAIT_POLICY"] == "PASSIVE" and settings["torch_threads"] == 2


@pytest.mark.parametrize(("user", "policy", "spincount"), [
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE", "30000000000"),  # a dedicated machine may want spinning back
    ({"GOMP_SPINCOUNT": "1000"}, "PASSIVE", "1000"),
])
def test_a_users_own_setting_is_kept(user, policy, spincount):
    result = run([sys.executable, "-W", "error", "-c", "import anytouch_policy, torch"], fresh_env(**user))
    gomp = libgomp_settings(result.stderr)
    assert (gomp["OMP_WAIT_POLICY"], gomp["GOMP_SPINCOUNT"]) == (policy, spincount)


def test_importing_torch_first_is_too_late_and_says_so():
    result = run([sys.executable, "-c", "import torch, anytouch_policy"], fresh_env())
    assert libgomp_settings(result.stderr)["GOMP_SPINCOUNT"] == "300000"  # what we cannot change any more
    assert "RuntimeWarning: anytouch_policy was imported after torch, too late for OMP_WAIT_POLICY" in result.stderr
    assert "export OMP_WAIT_POLICY=PASSIVE" in result.stderr
    quiet = run([sys.executable, "-c", "import torch, anytouch_policy"], fresh_env(OMP_WAIT_POLICY="PASSIVE"))
    assert "RuntimeWarning" not in quiet.stderr


@pytest.mark.slow
def test_torchrun_workers_get_the_defaults(tmp_path):
    """torchrun's own process imports torch first; its workers are fresh interpreters that import us first."""
    result = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                  "-m", "anytouch_policy.cli.main", *BENCH], fresh_env(TMPDIR=str(tmp_path)))  # torchrun's logs
    worker = result.stderr[result.stderr.rindex("OPENMP DISPLAY ENVIRONMENT BEGIN"):]  # the launcher reports first
    assert libgomp_settings(worker)["GOMP_SPINCOUNT"] == "0"
    assert json.loads(result.stdout)["thread_settings"]["torch_threads"] == 2


@pytest.mark.parametrize("threads", [0, -1, True, 1.5])
def test_set_torch_threads_refuses_a_bad_count(threads):
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        set_torch_threads(threads)
