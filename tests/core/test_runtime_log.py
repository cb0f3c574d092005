import os

import pytest
import torch

from aics.core.errors import UserError
from aics.core.io import read_jsonl
from aics.core.log import MetricsLogger
from aics.core.runtime import autocast, grad_scaler, keep_freed_memory, pick_device


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert pick_device("auto").type == "cuda"
    else:
        with pytest.raises(UserError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(UserError, match="unknown device"):
        pick_device("tpu")


def test_amp_is_off_on_cpu():
    cpu = torch.device("cpu")
    with autocast(cpu, True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert not grad_scaler(cpu, True).is_enabled()


def test_metrics_logger_writes_and_truncates_on_resume(tmp_path):
    m = MetricsLogger(tmp_path)
    for step in (10, 20, 30):
        m.scalars("train", step, {"loss": 1.0 / step}, epoch=1)
    m.close()
    assert [r["step"] for r in read_jsonl(tmp_path / "log" / "metrics.jsonl")] == [10, 20, 30]
    assert list((tmp_path / "tb").glob("events.out.tfevents.*")), "TensorBoard event file written"
    m = MetricsLogger(tmp_path, resume_step=20)
    m.scalars("train", 30, {"loss": 0.5})
    m.close()
    rows = read_jsonl(tmp_path / "log" / "metrics.jsonl")
    assert [(r["step"], r["loss"]) for r in rows] == [(10, 0.1), (20, 0.05), (30, 0.5)]


def test_disabled_logger_writes_nothing(tmp_path):
    m = MetricsLogger(tmp_path, enabled=False)
    m.scalars("train", 1, {"loss": 1.0})
    m.close()
    assert not any(tmp_path.iterdir())


def test_stop_signal_defers_the_first_signal_to_a_step_boundary():
    import os
    import signal

    from aics.core.runtime import StopSignal

    before = signal.getsignal(signal.SIGINT)
    with StopSignal() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested, "the first signal only asks to stop"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_rows_of_an_epoch_whose_checkpoint_was_not_saved_are_dropped_on_resume(tmp_path):
    from aics.core.io import read_jsonl
    from aics.core.log import MetricsLogger

    with MetricsLogger(tmp_path) as m:
        m.scalars("train", 8, {"loss": 1.0}, epoch=1)
        m.scalars("train_epoch", 8, {"loss": 1.0}, epoch=1)  # end of epoch 1, then killed before its save
    # the newest checkpoint is a step-8 save from inside epoch 1 (finished epochs: 0)
    MetricsLogger(tmp_path, resume_step=8, resume_epoch=0).close()
    assert [r["split"] for r in read_jsonl(tmp_path / "log" / "metrics.jsonl")] == ["train"]


def test_a_log_file_that_cannot_be_written_prints_no_traceback(tmp_path, capsys):
    import logging

    from aics.core.log import QuietFileHandler

    class Full:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

    h = QuietFileHandler(tmp_path / "train.log")
    h.stream = Full()
    h.emit(logging.LogRecord("aics", logging.INFO, __file__, 1, "hello", None, None))
    assert capsys.readouterr().err == ""


@pytest.mark.skipif("CS_GNU_LIBC_VERSION" not in getattr(os, "confstr_names", {}), reason="glibc only")
def test_keep_freed_memory_reuses_big_blocks_instead_of_faulting_them_in_again():
    import resource

    def page_faults_of_one_big_tensor() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(12 * 2**20)  # 48 MiB, above glibc's largest mmap threshold; freed at once
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    assert keep_freed_memory()
    counts = [page_faults_of_one_big_tensor() for _ in range(16)]
    # the first few land on new heap (glibc parks the small alignment remainders in its 7-slot cache)
    assert min(counts[-4:]) < 1000, f"page faults per 48 MiB tensor: {counts} (12288 when mapped afresh)"


def test_clipped_step_clips_the_gradient_norm_only_when_asked():
    import torch

    from aics.core.runtime import clipped_step, grad_scaler

    for clip, expected in ((0.0, 3.0), (1.5, 1.5)):
        w = torch.nn.Parameter(torch.zeros(2))
        opt = torch.optim.SGD([w], lr=1.0)
        w.grad = torch.tensor([3.0, 0.0])
        clipped_step(opt, grad_scaler(torch.device("cpu"), True), [w], clip)
        assert torch.allclose(w.detach(), torch.tensor([-expected, 0.0]))
