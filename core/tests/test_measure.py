import json

from genaccel.engine import clock
from genaccel.engine import machine as measure
from genaccel.report.environment import environment


def test_bandwidth_reference_only_rises(tmp_path, monkeypatch):
    """MBU's denominator is the best bandwidth ever measured: a figure cached in a busy moment is
    replaced by a higher one, and a lower measurement does not replace the cached figure."""
    monkeypatch.setenv("GENACCEL_CACHE", str(tmp_path))
    key = f"{measure.device_name('cpu')} [sum|max|copy]"
    probes = iter([30e9, 20e9])
    monkeypatch.setattr(measure, "_stream_bandwidth", lambda device, nbytes, repeats: next(probes))

    (tmp_path / "bandwidth.json").write_text(json.dumps({key: 25e9}))
    monkeypatch.setattr(measure, "_bandwidth_probe", {})
    assert measure.measure_bandwidth("cpu") == 30e9 and measure.bandwidth_probe("cpu") == 30e9
    assert json.loads((tmp_path / "bandwidth.json").read_text())[key] == 30e9
    assert measure.measure_bandwidth("cpu") == 30e9  # probed once per process

    monkeypatch.setattr(measure, "_bandwidth_probe", {})  # a new process, in a slower moment
    assert measure.measure_bandwidth("cpu") == 30e9 and measure.bandwidth_probe("cpu") == 20e9
    assert json.loads((tmp_path / "bandwidth.json").read_text())[key] == 30e9
    env = environment("cpu", {}, measure.measure_bandwidth("cpu"))
    assert env["memory_bandwidth_bytes_per_s"] == 30e9 and env["memory_bandwidth_probe_bytes_per_s"] == 20e9


def test_devices_are_strings_with_an_optional_index():
    from genaccel.engine.profiling import shares

    assert clock.is_cuda("cuda") and clock.is_cuda("cuda:1") and not clock.is_cuda("cpu")
    clock.synchronize("cpu")  # nothing to wait for
    steps = clock.StepClock("cpu")
    steps.start()
    steps.mark()
    assert len(steps.seconds()) == 1 and steps.seconds()[0] >= 0
    entry = {"wall_us": 10.0, "categories": {"Linear": 6.0}, "Idle": 4.0}
    assert shares(entry, "cuda:1") == {"Linear": 0.6, "Idle": 0.4}


def test_a_groups_other_ranks_are_not_other_processes():
    """A CPU-bound process named in ``pids`` (another rank of a tensor-parallel group) counts as the
    case's own use; unnamed, the same process is competition."""
    import subprocess
    import sys
    import time

    busy = "import time\nend = time.perf_counter() + 1.0\nwhile time.perf_counter() < end: pass\ntime.sleep(30)"
    results = {}
    for named in (False, True):
        proc = subprocess.Popen([sys.executable, "-c", busy])
        with measure.Contention(threads=1, pids=(proc.pid,) if named else ()) as c:
            time.sleep(1.0)
        proc.kill()
        proc.wait()
        results[named] = c.result["other_cores"]
    assert results[False] > 0.5  # the busy process is seen ...
    assert results[True] < results[False] - 0.5  # ... and, named as the group's, not counted as another's


def test_cpu_peak_memory_is_each_blocks_own():
    """On CPU the peak is the RSS high-water mark, reset at each block's start: a block after a larger one
    does not inherit its peak."""
    import torch
    from genaccel.engine.clock import PeakMemory

    with PeakMemory("cpu") as first:
        x = torch.ones(50_000_000)  # 200 MB, written
        del x
    with PeakMemory("cpu") as second:
        pass
    assert first.peak - first.start > 150e6
    assert second.peak - second.start < 50e6
