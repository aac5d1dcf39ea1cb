"""``cnnzoo.fit`` in a real Jupyter kernel, interrupted as a learner interrupts it (the kernel manager's
interrupt, SIGINT to the kernel): the cell ends with the project's typed one-line exception, not a
``KeyboardInterrupt`` traceback; the run dir has ``last.ckpt`` and says ``interrupted``; the same
kernel then trains again."""

from __future__ import annotations

import json
import re
import queue
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

jupyter_client = pytest.importorskip("jupyter_client")

RUN = ("'mnist_mlp', 'trainer.max_epochs=100000', '~logger', 'callbacks.input_inspection=null', "
       "'data.batch_size=8'")


def _outputs(client, msg_id: str, timeout: float) -> str:
    """Everything the cell ``msg_id`` printed (stream and error messages), once it is idle."""
    text, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        content = msg["content"]
        if msg["msg_type"] == "stream":
            text.append(content["text"])
        elif msg["msg_type"] == "error":
            text.append(f"{content['ename']}: {content['evalue']}")
        elif msg["msg_type"] == "status" and content["execution_state"] == "idle":
            return "".join(text)
    raise TimeoutError(f"cell still running after {timeout} s: {''.join(text)[-2000:]}")


@pytest.mark.slow
def test_an_interrupted_kernel_stops_after_the_batch_with_a_checkpoint(data_dir: Path, tmp_path: Path):
    run_dir, again = tmp_path / "run", tmp_path / "again"
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(tmp_path), env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        setup = client.execute("import cnnzoo, cnnzoo.errors")
        assert "Error" not in _outputs(client, setup, 120)
        cell = client.execute(
            f"try:\n    cnnzoo.fit({RUN}, run_dir={str(run_dir)!r})\n"
            "except cnnzoo.errors.TrainingInterrupted as e:\n    print('TYPED', type(e).__name__, e)\n")
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoints" / "last.ckpt").exists():  # an epoch has ended: training is under way
            assert not (run_dir / "metrics.json").exists(), (run_dir / "metrics.json").read_text()  # ended by itself
            assert time.monotonic() < deadline, "no epoch finished in 120 s"
            time.sleep(0.2)
        manager.interrupt_kernel()
        printed = _outputs(client, cell, 120)
        assert "KeyboardInterrupt" not in printed and "Traceback" not in printed, printed[-2000:]
        typed = next(line for line in printed.splitlines() if line.startswith("TYPED "))
        # within an epoch, or once one (its validation included) has ended: the checkpoint is written at epoch ends
        assert re.match(r"TYPED TrainingInterrupted training interrupted by SIGINT (in|after) epoch \d+/\d+, step \d+",
                        typed), typed
        assert f"state saved to {run_dir}/checkpoints/last.ckpt" in typed
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"
        second = client.execute(
            f"run = cnnzoo.fit('mnist_mlp', 'trainer.max_epochs=1', '~logger', run_dir={str(again)!r})\n"
            "print('STATUS', run.metrics['status'], len(run.history['loss']))")
        assert "STATUS completed 1" in _outputs(client, second, 120)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
