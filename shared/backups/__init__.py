"""Backups of the bots' disks: snapshot schedules by plan, a snapshot before each delete, restore."""
