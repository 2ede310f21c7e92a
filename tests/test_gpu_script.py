"""benchmarks/gpu.sh, the one-command GPU session, checked on a machine without a GPU.

Without a GPU its device steps must be skipped with the reason, not fail the whole script; with
--dry-run every step must run on the CPU at toy sizes and leave its results where $OUT says.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minidense as md

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                 reason="needs bash and timeout"),
              pytest.mark.skipif(md.cuda_available(), reason="checks the script without a GPU")]


def run_script(out, *args):
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=300)
    return done, (out / "summary.txt").read_text().splitlines()


def test_without_a_gpu_the_device_steps_are_skipped_with_the_reason(tmp_path):
    done, summary = run_script(tmp_path)
    assert done.returncode == 0
    assert summary[0].split()[:2] == ["smoke", "FAILED"] and "no usable GPU" in done.stdout
    assert len(summary) == 5
    assert all("skipped: no usable GPU" in line for line in summary[1:])
    assert (tmp_path / "gpu.log").read_text().count("===") >= 5


def test_a_dry_run_runs_every_step_on_the_cpu_and_keeps_the_results_under_out(tmp_path):
    done, summary = run_script(tmp_path, "--dry-run")
    assert done.returncode == 0
    steps = {line[:28].strip(): line[28:].split()[0] for line in summary}
    assert steps == {"smoke": "FAILED", "bench densenet40": "ok", "bench densenet_bc_100": "ok",
                     "bench bc100 memory-efficient": "ok", "device tests (emulation)": "ok"}
    for name in ("bench_densenet40_cuda.json", "bench_bc100_cuda.json",
                 "bench_bc100_efficient_cuda.json"):
        result = json.loads((tmp_path / name).read_text())
        assert result["device"] == "cpu" and result["minidense"]["images_per_s"] > 0
    assert "profile" in json.loads((tmp_path / "bench_densenet40_cuda.json").read_text())
    assert 'failures="0"' in (tmp_path / "device_tests.xml").read_text()
