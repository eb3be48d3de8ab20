"""HSTU's presets: the study's ``paper`` configuration (14 layers, the last 11 on the last 1024
events) and smaller sizes, as :class:`genaccel_hstu.model.HSTUConfig` fields.  Plain data, read at
registration."""

PRESETS = {
    "tiny": dict(dim=32, heads=2, qk_dim=16, v_dim=16, layers=3, full_layers=1, truncate_to=32),
    "small": dict(dim=256, heads=2, qk_dim=64, v_dim=64, layers=4, full_layers=1, truncate_to=1024),
    "paper": dict(dim=512, heads=4, qk_dim=128, v_dim=128, layers=14, full_layers=3, truncate_to=1024),
}
