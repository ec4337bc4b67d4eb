"""Bot health: heartbeats from the VMs, the scheduled check, automatic recovery (shared/health/monitor.py)."""
