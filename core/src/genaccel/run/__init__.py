"""Running cases: configs and bench TOMLs, resolving a run once, preparing it, measuring a case, its
accuracy and quality impact, a bench (over devices too), profiling.  Imports every layer below."""
