"""The roofline of ``genaccel characterize-study`` (Golden et al. 2024, Fig. 5) as pure functions of measured
points: the roof, the classification against the ridge point, the study's column, the table and the figure."""

from genaccel.report.roofline import bound, plot_roofline, roof, roofline_entry, roofline_markdown, study_bound

GFLOP, GB = 1e9, 1e9


def machine(peak: float, bandwidth: float) -> dict:
    return {"device": "test cpu", "dtype": "float32", "peak_flops_per_s": peak, "bandwidth_bytes_per_s": bandwidth,
            "ridge_flops_per_byte": peak / bandwidth}


def point(workload: str, flops: float, nbytes: int, seconds: float, roof_of: dict) -> dict:
    return {"workload": workload, "roofline": roofline_entry(workload, flops=flops, parameters=nbytes // 4,
                                                             parameter_bytes=nbytes, seconds=seconds, machine=roof_of)}


def test_the_roof_is_the_bandwidth_slope_up_to_the_ridge_then_the_peak():
    assert roof(2.0, 100 * GFLOP, 10 * GB) == 20 * GFLOP  # 2 FLOP/B × 10 GB/s, under the peak
    assert roof(50.0, 100 * GFLOP, 10 * GB) == 100 * GFLOP  # past the ridge (10 FLOP/B): the peak
    assert roof(10.0, 100 * GFLOP, 10 * GB) == 100 * GFLOP


def test_the_classification_flips_when_the_ridge_point_moves_past_the_intensity():
    assert bound(8.0, ridge=10.0) == "memory-bound" and bound(8.0, ridge=5.0) == "compute-bound"
    assert bound(10.0, ridge=10.0) == "compute-bound"  # on the ridge the peak is reached
    slow_memory, fast_memory = machine(100 * GFLOP, 5 * GB), machine(100 * GFLOP, 20 * GB)  # ridges 20 and 5 FLOP/B
    entry = {"flops": 8e9, "parameters": 250_000_000, "parameter_bytes": 10**9, "seconds": 0.5}  # 8 FLOP/B
    here = roofline_entry("llama/t-t", **entry, machine=slow_memory)
    there = roofline_entry("llama/t-t", **entry, machine=fast_memory)
    assert here["intensity_flops_per_byte"] == there["intensity_flops_per_byte"] == 8.0
    assert (here["bound"], there["bound"]) == ("memory-bound", "compute-bound")
    assert here["roof_flops_per_s"] == 40 * GFLOP and there["roof_flops_per_s"] == 100 * GFLOP
    assert here["attained_flops_per_s"] == 16 * GFLOP


def test_the_study_classifies_diffusion_as_compute_bound_and_transformer_tti_as_memory_bound():
    assert study_bound("stable-diffusion/t-i").startswith("compute-bound")
    assert study_bound("imagen/t-i").startswith("compute-bound") and study_bound("muse/t-i").startswith("memory-bound")
    assert study_bound("hstu/ranking") is None  # not a model the study places


def test_the_figure_and_the_table_are_written(tmp_path):
    roof_of = machine(150 * GFLOP, 25 * GB)
    entries = [point("llama/t-t", 2e8, 4 * 10**7, 0.05, roof_of), point("stable-diffusion/t-i", 5e11, 4 * 10**8, 8.0,
                                                                      roof_of)]
    path = plot_roofline(entries, tmp_path / "fig5-roofline.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
    md = roofline_markdown(entries)
    rows = [line for line in md.splitlines() if line.startswith("| llama") or line.startswith("| stable")]
    assert "memory-bound | memory-bound (LLM" in rows[0] and "compute-bound | compute-bound (diffusion)" in rows[1]
    assert "ridge point 6.00 FLOP/B" in md
    assert plot_roofline([{"workload": "x", "roofline": None}], tmp_path / "none.png") is None


def test_a_workload_without_counted_work_has_no_point_on_the_figure(tmp_path):
    entries = [point("hstu/ranking", 0, 4000, 0.01, machine(150 * GFLOP, 25 * GB))]
    assert entries[0]["roofline"]["intensity_flops_per_byte"] == 0 and entries[0]["roofline"]["bound"] == "memory-bound"
    assert plot_roofline(entries, tmp_path / "fig5.png") is None and not (tmp_path / "fig5.png").exists()
