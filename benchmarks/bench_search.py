"""Issue 5: search latency on 1,000,000 customers in MariaDB, against the naive OR-LIKE scan.

200 mixed searches (ids, phones in both formats, emails, name prefixes): p50/p95 for
wb.search; the naive query on a 20-search subset of the same mix (each is a full scan).
Then 100 threads sharing one workbench search for 60 s: success rate, p95, errors.
Targets: p95 <= 20 ms, >= 50x faster than naive; >= 99.9% success, no pool exhaustion.
Run: .venv/bin/python benchmarks/bench_search.py [--seconds 60] [--threads 100]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import ensure_sample, ro_url, summary, write

import hybridwb
from hybridwb.source.sample import phone_for

DB = "hybridwb_bench"
CUSTOMERS = 1_000_000
REPO = Path(__file__).resolve().parents[1]


def terms(wb: hybridwb.Workbench, n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    ids = [rng.randrange(1, CUSTOMERS) for _ in range(n)]
    rows = {
        r["customer_id"]: r
        for r in wb.source.records(
            "SELECT customer_id, name, email FROM customers WHERE customer_id IN :ids", {"ids": ids}
        )
    }
    out = []
    for i, cid in enumerate(ids):
        row = rows[cid]
        kind = i % 5
        out.append(
            [
                str(cid),
                phone_for(cid),
                phone_for(cid).replace("-", ""),
                row["email"] or str(cid),
                row["name"],
            ][kind]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=100)
    args = parser.parse_args()
    ensure_sample(DB, CUSTOMERS)
    work = Path(tempfile.mkdtemp())
    (work / "mappings").mkdir()
    shutil.copy(
        REPO / "mappings" / "table-mappings.json", work / "mappings" / "table-mappings.json"
    )
    wb = hybridwb.connect(
        source=ro_url(DB).render_as_string(hide_password=False),
        cwd=work,
        home=str(work / ".hybridwb"),
    )
    wb.source.pool_size = 10
    mix = terms(wb, 200)
    wb.search("customers", mix[0])  # warm the schema facts
    fast = []
    for term in mix:
        started = time.perf_counter()
        wb.search("customers", term)
        fast.append((time.perf_counter() - started) * 1000)
    naive = []
    for term in mix[:20]:
        started = time.perf_counter()
        wb.search.naive("customers", term)
        naive.append((time.perf_counter() - started) * 1000)
    fast_s, naive_s = summary(fast), summary(naive)

    # concurrency: many threads, one workbench (one pool)
    stop = time.monotonic() + args.seconds
    lat: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            term = rng.choice(mix)
            started = time.perf_counter()
            try:
                wb.search("customers", term)
                ms = (time.perf_counter() - started) * 1000
                with lock:
                    lat.append(ms)
            except Exception as exc:
                with lock:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = len(lat) + sum(errors.values())
    success = len(lat) / total if total else 0.0
    conc = summary(lat) if lat else {}
    write(
        "search",
        {
            "customers": CUSTOMERS,
            "searches": len(mix),
            "wb.search_ms": fast_s,
            "naive_or_like_ms": naive_s,
            "speedup_p50": round(naive_s["p50"] / fast_s["p50"], 1),
            "concurrency": {
                "threads": args.threads,
                "seconds": args.seconds,
                "requests": total,
                "success_rate": round(success, 5),
                "latency_ms": conc,
                "errors": errors,
                "pool_size": wb.source.pool_size,
            },
            "targets": {
                "p95 <= 20 ms": fast_s["p95"] <= 20,
                ">= 50x faster than naive": naive_s["p50"] / fast_s["p50"] >= 50,
                ">= 99.9% success under concurrency": success >= 0.999,
            },
        },
    )
    wb.close()


if __name__ == "__main__":
    main()
