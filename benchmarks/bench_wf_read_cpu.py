"""CPU per row of a run's read half, this tree against another (`--ref`, a checkout).

A workflow run's client is CPU-bound under the interpreter lock (issue #17): its worker
thread freezes the targets, reads their rows and turns them into candidates while the main
loop renders. This times, with process CPU time, the functions of that half on 5,000-row
batches of the sample shop's customers as `sample.generate` writes them (the phone
`010-NNNN-NNNN`, one in ten without dashes, one in fifty missing; `FIRST_IDS`): the SMS normalizers, the
freeze's (key, recipient) pairs, `batches.candidates`, `Source.records` (its statement
stubbed: rows as a driver returns them) and the batch's rows by key text.

Each repetition is a fresh process per tree, the trees alternating (A B B A ...), so both
see the same machine load; per function, the median and min-max over the repetitions of
µs per row (each repetition: the mean of `--calls` calls).

Run on demand (never a timed test):
  .venv/bin/python benchmarks/bench_wf_read_cpu.py --ref /path/to/old/checkout [--reps 7]
      [--out wf_read_cpu]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import load_average, write

HERE = Path(__file__).resolve().parents[1]
ROWS = 5_000
#: the batches read (their first customer): of a 100k run's twenty 5,000-row batches, 12 hold
#: no number the KR metadata calls invalid (as 50,001-55,000) and 8 hold 38 (as 45,001-50,000:
#: numbers 010-597N-NNNN to 010-599N-NNNN, which phonenumbers parses, some 100 µs each)
FIRST_IDS = (50_001, 45_001)
#: the columns a run of the benchmark's template reads for each target
COLUMNS = ("customer_id", "name", "phone", "grade", "marketing_opt_in")


def child(calls: int, first_id: int) -> dict[str, float]:
    """µs per row of each function, in this process (its `hybridwb` from PYTHONPATH)."""
    from hybridwb.source.sample import customers, generate
    from hybridwb.source.source import Source
    from hybridwb.workflows import audience, batches, policies, process

    names = [c.name for c in customers.columns]
    found = next(rows for table, rows in generate(ROWS, seed=42, start_id=first_id) if table)
    picked = [tuple(r[names.index(c)] for c in COLUMNS) for r in found]
    assert len(picked) == ROWS
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in picked]
    phones = [r["phone"] for r in rows]
    by_key = {str(r["customer_id"]): r for r in rows}
    batch = [
        {"seq": i, "target_key": str(r["customer_id"]), "recipient": policies.normalize("sms", r["phone"])}
        for i, r in enumerate(rows)
    ]  # fmt: skip
    aud = audience.Audience(
        "customers", "customer_id", "number", "phone", "sms", "marketing_opt_in", None
    )

    class Stubbed(Source):
        def __init__(self) -> None:
            pass

        def _run(self, *args: Any, **kwargs: Any) -> Any:
            return list(COLUMNS), picked, None, None

    source = Stubbed()
    normalize, checked = policies.normalizer("sms"), batches.checked_normalizer("sms")
    keep = set(by_key)
    work = {
        "normalizer_sms": lambda: [normalize(p) for p in phones],
        "checked_normalizer_sms": lambda: [checked(p) for p in phones],
        "frozen_pairs": lambda: process._frozen_pairs(rows, aud, "phone"),
        "candidates": lambda: batches.candidates(
            batch, by_key, "sms", "phone", "marketing_opt_in", None
        ),
        "source_records": lambda: source.records("SELECT 1"),
        "by_key_text": lambda: audience.by_key_text(rows, "customer_id", keep),
        "rows_with_nul": lambda: batches.rows_with_nul(by_key),
    }
    # a run reads each row twice: its freeze, then its batch (one call of each per row)
    work["frozen_pairs_then_candidates"] = lambda: (work["frozen_pairs"](), work["candidates"]())
    # the parses a tree remembers (none before) are forgotten before every call: each call
    # is a run's first read of its rows
    cached = getattr(policies, "_parsed_national_mobile", None)
    forget = cached.cache_clear if cached is not None else lambda: None
    out = {}
    gc.disable()  # a run raises the collector's threshold (`heap.frozen_heap`): no
    # collection of the garbage a call leaves is timed with the next one
    for name, fn in work.items():
        fn()  # warm: caches of the metadata, compiled patterns
        spent = 0.0
        for _ in range(calls):
            forget()
            gc.collect()
            start = time.process_time()
            fn()
            spent += time.process_time() - start
        out[name] = spent / calls / ROWS * 1e6
    return out


def run_child(tree: Path, calls: int, first_id: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(calls), "--first-id", str(first_id)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref", default="", help="the other checkout (before)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--out", default="", help="results file name (none: print only)")
    parser.add_argument("--child", type=int, default=0)
    parser.add_argument("--first-id", type=int, default=FIRST_IDS[0])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.first_id)))
        return
    trees = {"after": HERE, **({"before": Path(args.ref).resolve()} if args.ref else {})}
    got: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    before_load = load_average()
    for rep in range(args.reps):
        order = list(trees) if rep % 2 == 0 else list(reversed(trees))
        for label in order:
            one: dict[str, float] = {}
            for first in FIRST_IDS:
                one |= {
                    f"{k} @{first}": v
                    for k, v in run_child(trees[label], args.calls, first).items()
                }
            got[label].append(one)
    summary: dict[str, Any] = {}
    for name in got["after"][0]:
        entry: dict[str, Any] = {}
        for label, reps in got.items():
            values = [r[name] for r in reps]
            entry[label] = {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
            }
        if "before" in entry:
            entry["after_over_before"] = round(
                entry["after"]["median"] / entry["before"]["median"], 3
            )
        summary[name] = entry
    data = {
        "unit": "µs of process CPU time per row",
        "rows_per_batch": ROWS,
        "batches": {
            f"@{first}": f"customers {first:,}-{first + ROWS - 1:,}" for first in FIRST_IDS
        },
        "reps": args.reps,
        "calls_per_rep": args.calls,
        "load_average_before": before_load,
        "load_average_after": load_average(),
        "functions": summary,
    }
    if args.out:
        write(args.out, data)
    else:
        print(json.dumps(data, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
