"""The daemon: service, per-account wiring, metrics, sd_notify, check."""
