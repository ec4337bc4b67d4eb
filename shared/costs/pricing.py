"""GCP cost estimate of a user's bot VMs, from list prices kept here.

Source: Google Cloud on-demand list prices for us-central1,
  machines: https://cloud.google.com/compute/vm-instance-pricing  (E2 / N2 / N1 predefined types)
  disks:    https://cloud.google.com/compute/disks-image-pricing  (persistent disk, per GB-month)
Update this table when those pages change. It is an estimate: no sustained-use or
committed-use discounts, no network egress; other regions are priced as us-central1.
"""
from __future__ import annotations

from dataclasses import dataclass

PRICE_SOURCE = ("https://cloud.google.com/compute/vm-instance-pricing; "
                "https://cloud.google.com/compute/disks-image-pricing (us-central1, on-demand)")

MACHINE_USD_PER_HOUR = {
    "e2-micro": 0.008376,
    "e2-small": 0.016751,
    "e2-medium": 0.033503,
    "e2-standard-2": 0.067006,
    "e2-standard-4": 0.134012,
    "n2-standard-2": 0.097118,
    "n1-standard-1": 0.0475,
}
DISK_USD_PER_GB_MONTH = {"pd-standard": 0.04, "pd-balanced": 0.10, "pd-ssd": 0.17}
HOURS_PER_MONTH = 730  # Google's billing month for per-month disk prices

# A VM is billed for compute while it runs; its boot disk is billed while it exists.
COMPUTE_BILLED = ("provisioning", "running")

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Shape:
    machine_type: str
    disk_gb: int
    disk_type: str

    def __post_init__(self):
        if self.machine_type not in MACHINE_USD_PER_HOUR:
            raise ValueError(f"no price for machine type {self.machine_type!r}: add it to MACHINE_USD_PER_HOUR")
        if self.disk_type not in DISK_USD_PER_GB_MONTH:
            raise ValueError(f"no price for disk type {self.disk_type!r}: add it to DISK_USD_PER_GB_MONTH")


def billed_to_operator(deployments: list[dict], operator_projects: tuple[str, ...]) -> list[dict]:
    """A VM's GCP spend follows the project it runs in: the operator's projects are billed to the
    operator (and estimated here, for the user); a VM in the customer's own project is billed to the
    customer by Google directly, so it is not part of gcpEstimate. No list (local): all are the operator's."""
    if not operator_projects:
        return deployments
    return [d for d in deployments if d.get("gcpProject", operator_projects[0]) in operator_projects]


def estimate(deployments: list[dict], shape: Shape, period_start_ms: int, period_end_ms: int) -> float:
    """USD for the period. Each deployment counts from max(createdAt, period start); the
    deployment document holds only its current status, so that status is taken for the
    whole period (compute for provisioning/running, disk always)."""
    total = 0.0
    for d in deployments:
        start = max(int(d["createdAt"]), period_start_ms)
        hours = max(0, period_end_ms - start) / HOUR_MS
        disk = shape.disk_gb * DISK_USD_PER_GB_MONTH[shape.disk_type] * hours / HOURS_PER_MONTH
        compute = MACHINE_USD_PER_HOUR[shape.machine_type] * hours if d["status"] in COMPUTE_BILLED else 0.0
        total += disk + compute
    return round(total, 6)
