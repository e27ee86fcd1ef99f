"""One runner of the shared-store soak (test_shared_store_soak.py), in a process of its own.

Until its deadline it replaces random windows of both organizations with their parts, takes
quota slots and claims windows, as concurrent CI runners do; then it prints what it did as JSON.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from circlecost.engine import SharedStore
from circlecost.store import Store
from circlecost.store import connection as store_connection
from circlecost.windows import Window

# Each runner asks this many times for a quota slot of each organization, however slow the
# machine: between them the runners always ask for more than the hourly budget.
MIN_SLOT_ASKS = 6


def main() -> None:
    plan = json.loads(sys.argv[1])
    store = Store(SharedStore(plan["catalog"], plan["data_path"]), writer_kind=plan["name"])
    rng = random.Random(plan["seed"])
    now = datetime.fromisoformat(plan["now"])
    loads = slots = claims = 0
    claimed: list[str] = []
    deadline = time.monotonic() + plan["seconds"]
    tasks = plan["tasks"]
    # First every runner loads the windows that are still empty, all at about the same time:
    # the race that stored an empty window's rows once per runner before the guard rows.
    for task in rng.sample(tasks, len(tasks)):
        if task["empty"]:
            window = Window(
                datetime.fromisoformat(task["start"]), datetime.fromisoformat(task["end"])
            )
            store.replace_window_rows(
                task["integration_id"], window, None, [Path(path) for path in task["parts"]]
            )
            loads += 1
    asked = {task["org_id"]: 0 for task in tasks}
    while time.monotonic() < deadline or min(asked.values()) < MIN_SLOT_ASKS:
        task = rng.choice(tasks)
        window = Window(datetime.fromisoformat(task["start"]), datetime.fromisoformat(task["end"]))
        action = rng.random() if time.monotonic() < deadline else 0.75
        if action < 0.6:
            store.replace_window_rows(
                task["integration_id"], window, None, [Path(path) for path in task["parts"]]
            )
            loads += 1
        elif action < 0.9:
            asked[task["org_id"]] += 1
            if store.take_request_slot(task["org_id"], "POST", now, plan["per_hour"]) is None:
                slots += 1
        else:
            claim = rng.choice(plan["claim_windows"])
            window = Window(
                datetime.fromisoformat(claim["start"]), datetime.fromisoformat(claim["end"])
            )
            held = store.claim_window(
                claim["integration_id"], window, plan["name"], now, timedelta(hours=1), None
            )
            claims += 1
            if held is None:
                claimed.append(f"{claim['integration_id']}/{claim['start']}")
    print(
        json.dumps(
            {
                "loads": loads,
                "slots": slots,
                "claims": claims,
                "claimed": sorted(set(claimed)),
                "retries": store_connection.conflict_retries,
            }
        )
    )


if __name__ == "__main__":
    main()
