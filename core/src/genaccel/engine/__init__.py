"""What every model's fast path runs on: the step executor (eager, compiled, CUDA graphs), memory
layouts, clocks and memory, the machine's probes, profiling regions.  Imports ``plugin`` and below."""
