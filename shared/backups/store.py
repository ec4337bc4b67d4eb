"""The internal collection `botBackups/{deploymentId}`: what a bot's snapshots belong to.

One document per deployment that ever had a disk: owner, where the disk is, the schedule attached,
the bot's configuration as of its last deploy or delete (so a restore rebuilds the same bot), and,
once deleted, its final snapshot and `expireAt` (deletion + retention: the cleanup removes what is
left then, and the document). Written by the deploy job; read by the owner's backup routes.
"""
from __future__ import annotations

from typing import Any

from shared.db import Repo
from shared.models import Doc


class BotBackup(Doc):
    collection = "botBackups"
    userId: str
    gcpProject: str
    zone: str
    disk: str  # the boot disk's name (= the VM's name)
    diskUrl: str  # what its snapshots name as sourceDisk
    plan: str
    policy: str | None = None  # the snapshot schedule attached (resource policy name)
    keepDays: int  # retention of its snapshots
    settings: dict[str, Any]  # botName, brandEmoji, primaryModel, fallbackModels
    plugins: list[dict[str, Any]] = []  # {pluginId, enabled, config}
    skills: list[dict[str, Any]] = []  # {skillId, enabled, cronOverride}
    apiKeyNames: list[str] = []  # values are never copied: the owner adds them again after a restore
    restoreFrom: str | None = None  # snapshot URL the next VM's disk is made from (a restore)
    restoredFrom: str | None = None
    finalSnapshot: str | None = None
    finalSnapshotError: str | None = None
    deletedAt: int | None = None
    expireAt: int | None = None  # set on delete: nothing of this bot outlives it
    createdAt: int
    updatedAt: int


backups = Repo(BotBackup)
