"""What every model's fast path runs on: the step executor (eager, compiled, CUDA graphs), memory
layouts, clocks and memory, the machine's probes, profiling regions, genaccel's native CPU kernels.  Imports ``plugin`` and below."""
