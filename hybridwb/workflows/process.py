"""Inside the run's kernel: freeze the target set, decide, render, write records once.

The target set is frozen when the run starts (keys and recipients stored with the run), so
a resume completes exactly that set; each frozen target ends with a send record or an
exclusion with its reason, both keyed by (run, target), so any number of crashes and
resumes neither loses nor doubles one. Counters are read back from those rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridwb.errors import HybridwbError, ValidationError
from hybridwb.platform.campaigns import Campaigns, FrozenPage, RecordRows
from hybridwb.workflows import (
    advertising,
    audience,
    batches,
    heap,
    lock,
    outcome,
    pending,
    periods,
    policies,
    prefetch,
    refusals,
    rendering,
    spelling,
    writer,
)
from hybridwb.workflows.clock import run_clock
from hybridwb.workflows.config import message_config
from hybridwb.workflows.lock import RunTakenOver as RunTakenOver  # where callers find it
from hybridwb.workflows.lock import taken_over
from hybridwb.workflows.progress import kernel_bar
from hybridwb.workflows.report import mask_text

if TYPE_CHECKING:
    from hybridwb.mapping import MappingService
    from hybridwb.platform.store import Store
    from hybridwb.source import Source
    from hybridwb.targets import TargetService
    from hybridwb.targets.service import Plan
    from hybridwb.templating import TemplateService


#: records a run writes before it refreshes the history's statistics, then each time its
#: records have doubled (see `Campaigns.analyze_history`); at the least as many as the
#: statistics already describe (the first refresh when the run has doubled the history
#: they were taken of), and only when a batch of the run is left to plan
ANALYZE_AFTER = 50_000
#: targets per source query and per store write (the notebook's `batch_size`)
DEFAULT_BATCH_SIZE = 5000


#: where tests and benchmarks found it: the freeze's (key, recipient) pairs
_frozen_pairs = refusals.pairs
#: what the set is frozen for, in the run's stats (a module name tests replace)
_remember_freeze = audience.remember_freeze


@dataclass
class Processor:
    """The in-kernel half of a run, given its collaborators explicitly."""

    store: Store
    source: Source
    mappings: MappingService
    targets: TargetService
    templates: TemplateService
    #: where a by-hand call keeps its run's end when the store fails at it (`pending`)
    home: Path | None = None

    def freeze(
        self,
        wf: dict[str, Any],
        run_id: Any,
        aud: audience.Audience,
        limit: int | None,
        batch_size: int,
        now: datetime | None = None,
        owner: str | None = None,
        advertising: bool = False,
        clock: float | None = None,
    ) -> Plan:
        """Store every target's key and recipient with the run (whole or none), as `owner`;
        returns the plan it froze by, its consent columns typed by the server now. For an
        `advertising` message, a target whose recipient another row of the audience refused
        is decided here, with the set (`refusals`). `clock`: the server's clock every read
        of the freeze sees (`Plan.clock`), recorded with the set for its batches."""

        # the run's plan: its consent columns typed by the server now (`plan_for_run`)
        plan = self.targets.plan_for_run(wf["target_config"], now=now, clock=clock)

        column = plan.recipient or aud.recipient
        refused = refusals.Refusals()
        if advertising:  # informational messages are exempt
            how = refusals.recipient_for(self.targets, plan, aud)
            refused = refusals.read(self.targets, aud, **how, now=now, clock=clock)
        campaigns = Campaigns(self.store.backend)
        exclude, hold = refusals.recorders(self.store, campaigns, wf, run_id, owner)

        # a target another row refused for is excluded under its own reason when it has
        # none of its own either (read with it here): the run counts what it would have
        own = (plan.consent or aud.consent) if refused.consent else None
        only = {column} if own is None else {column, own}

        def pages() -> Iterator[tuple[list[tuple[str, str | None]], list[Any] | None]]:
            seen = 0
            definition = wf["target_config"]
            for rows in self.targets.iter(definition, batch_size, now=now, only=only, clock=clock):
                if limit is not None:
                    rows = rows[: max(0, limit - seen)]
                if not rows:
                    return
                seen += len(rows)
                if aud.key not in rows[0]:
                    raise ValidationError(
                        f"The target query must return the key {aud.key!r}; add it to the SELECT."
                    )
                consents = None if own is None else [r.get(own) for r in rows]
                yield _frozen_pairs(rows, aud, column), consents
                if limit is not None and seen >= limit:
                    return

        def prepared() -> Iterator[tuple[FrozenPage, list[Any] | None]]:
            seq = 0
            for pairs, consents in pages():  # COPY text made in the worker
                yield campaigns.frozen_page(run_id, seq, pairs), consents
                seq += len(pairs)

        with prefetch.ahead(prepared(), thread=self._can_prefetch()) as read:
            decided = refusals.suppressing(read, refused, exclude, hold)
            if campaigns.freeze(run_id, decided, workflow_id=wf["id"], owner=owner) is None:
                raise taken_over(run_id)
        return plan

    def _can_prefetch(self) -> bool:
        """Whether a worker thread may read the next batch: each of its reads takes a
        connection of its own from the pool, which a Postgres store and a MySQL source
        give; SQLite (an in-memory one has a database per connection, a file one a
        writer at a time) reads in the run's thread."""
        return self.store.backend.name == "postgresql" and not self.source.is_sqlite

    def process(self, workflow: Any, run_id: Any, **kwargs: Any) -> dict[str, Any]:
        """`_process` under the workflow's lock (taken for this call without an `owner`, see
        `lock.owning`); however it ends, a batch's locks go, then the reads ahead, the lock."""
        given = kwargs.pop("owner", None)
        if self.home is not None and not given:
            # what an earlier call kept (its end, its lock to release): a notebook's next
            # call found its own kept lock and was refused (round 38)
            pending.flush(self.store, self.home)
        run = self.store.runs.get(run_id)
        outcome.refuse_another_dry_run(run, kwargs.get("dry_run"))
        if not given and run.get("status") == "succeeded":
            # by hand, again (a notebook cell run twice): nothing is pending, and the run
            # is not reopened (round 37: a failure in the new pass turned it `failed`)
            return dict(run.get("stats") or {})
        owner = lock.owning(self.store, workflow, run_id, given, self.home)
        with heap.frozen_heap(), owner as kwargs["owner"]:
            opened: dict[str, Any] = {}  # the run's period this call opened, once it has
            tried: list[dict[str, Any]] = []  # the periods it tried to open
            try:
                with contextlib.ExitStack() as reading, contextlib.ExitStack() as held:
                    stats = self._process(
                        workflow,
                        run_id,
                        held=held,
                        reading=reading,
                        opened=opened,
                        tried=tried,
                        runners=bool(given),  # '' is no owner (`lock.owning`): by hand
                        **kwargs,
                    )
            except BaseException as exc:
                # no runner writes this run's end: failed with its error, under its lock,
                # the reads ahead and the batch's locks gone (a run taken over is its new
                # owner's to end; a store that failed: the end is kept on disk)
                # (the period it opened; else those it tried to open, which may have been
                # written though the answer was lost: round 37)
                # (and the run as it was read, had it never been opened)
                fresh = [run] if run.get("started_at") is None else []
                ends = [opened] if opened else fresh + tried
                if not given and not isinstance(exc, RunTakenOver):
                    with contextlib.suppress(HybridwbError):
                        outcome.end_by_hand(self.store, self.home, run_id, kwargs, ends, exc)
                raise
            if not given:  # no runner writes this run's end: its status, under its lock
                outcome.end_by_hand(self.store, self.home, run_id, kwargs, [opened])
            return stats

    def _process(
        self,
        workflow: Any,
        run_id: Any,
        *,
        held: contextlib.ExitStack[Any],
        reading: contextlib.ExitStack[Any],
        opened: dict[str, Any] | None = None,
        tried: list[dict[str, Any]] | None = None,
        runners: bool = False,
        owner: str | None = None,
        now: datetime | None = None,
        dry_run: bool = False,
        limit: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_pause: float = 0.0,
        progress: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> dict[str, Any]:
        """Freeze (first pass only), then work through the frozen targets still pending."""
        batches.check_run(limit, batch_size, batch_pause)  # a resume does not freeze
        started = time.perf_counter()
        tick = run_clock(now, clock)
        now = tick()
        store = self.store
        campaigns = Campaigns(store.backend)
        wf = store.workflows.get(workflow)
        run = store.runs.get(run_id)
        msg = advertising.message_of(self.templates, wf["message_config"])
        cfg = message_config(wf["message_config"])
        aud = audience.audience_for(self.mappings, wf["target_config"])
        if msg.advertising:
            advertising.check(msg.text, msg.sender, "workflow's message")

        def beat() -> None:
            if owner and not campaigns.heartbeat(wf["id"], run["id"], owner):
                raise taken_over(run["id"])

        beat()
        # the period `hybridwb run` opened goes on (its kernel: the runner's owner, the run
        # `running` with its start); any other call opens a new one, from a read under the
        # lock, checked (`periods.open_period`; round 36: a by-hand call went on with a dead
        # runner's `running` period, and that runner's late end landed on it), stamped by
        # the wall clock, not the run's `now` (two calls given one clock: one start)
        if runners and run.get("status") == "running" and run.get("started_at"):
            store.runs.reopen(run, started_at=run["started_at"])
            period = store.runs.get(run["id"])
            if period.get("finished_at") is not None or periods.instant(
                period.get("started_at")
            ) != periods.instant(run["started_at"]):
                raise taken_over(run["id"])  # another opened a period since (round 38)
        else:  # by hand: a run that succeeded is not worked again (as a resume refuses it)
            period = periods.open_period(store, run["id"], resume=True, tried=tried)
        if opened is not None:
            opened.update(period)
        # the row the freeze marks the set frozen in: `hybridwb run` made it; a run made
        # another way (`wb.store.runs.create`) had none, and every call froze it anew
        campaigns.start_state(run["id"], owner or "", "manual")
        state = campaigns.state(run["id"])
        plan = None
        if state.get("frozen_at") is None:
            # the server's clock every read of the run sees (a saved query's NOW(), a view's
            # CURDATE()), kept with the set: a resume days later reads the rows it froze
            server = self.targets.mappings.source.clock()
            _remember_freeze(
                store, campaigns, run, aud, now, owner or None, msg.advertising, server
            )
            plan = self.freeze(
                wf, run["id"], aud, limit, batch_size, now, owner or None, msg.advertising, server
            )
        frozen = audience.frozen_of(store.runs.get(run["id"]), aud, now)
        # the frozen targets another row refused night consent for (`refusals`): seq numbers
        night_held = frozenset(frozen.get("night_held") or ()) if msg.advertising else frozenset()
        # the set is judged as of its freeze: a resume does not re-read "the last 7 days";
        # a resume types its consent columns by the server now, as the freeze did (each
        # batch's read is checked against these types: `audience.refuse_retyped_consent`)
        as_of = datetime.fromisoformat(frozen["as_of"])
        plan = plan or self.targets.plan_for_run(
            wf["target_config"], now=as_of, clock=frozen.get("clock")
        )
        report = self.templates.automap(msg.text, aud.table)
        # an informational message whose definition filters by consent is decided on it
        # too: the filter keeps unclear values, which the run excludes and counts
        filtered = plan.consent is not None and plan.definition.exclude_opt_out
        rules = policies.Rules(
            wf["id"], run["id"], now, cfg.policy, msg.advertising, cfg.quiet_hours, filtered
        )
        needs_consent = msg.advertising or filtered
        rendered = waiting = 0
        sizes: Counter[str] = Counter()
        size_bytes: Counter[str] = Counter()
        samples: list[dict[str, Any]] = []
        before = campaigns.counts(run["id"])
        if before["pending"]:  # decided for this message, by these consent fields
            audience.refuse_another_decision(run["id"], frozen, aud, msg.advertising)
        total = before["pending"]
        first_pass = before["records"] == 0 and before["skipped"] == 0
        # read only what deciding and rendering use; render with the template compiled once
        only = audience.columns_for(plan, aud, report, advertising=needs_consent)
        render = self.templates.renderer(
            msg.text,
            table=aud.table,
            mode=msg.mode,
            message_type=msg.message_type,
            report=report,
            warn=False,
        )
        # a message's related values are read with its row, in one snapshot of the source
        # (`batches.pending_batches`); a template that reads none needs no snapshot
        reads_related = bool(self.templates.related_paths(report))
        recipient_path = plan.recipient or aud.recipient
        consent_path = plan.consent or aud.consent
        bar = kernel_bar(total, wf["name"], disable=not progress)
        # a history whose statistics describe more rows than the run has written is
        # planned for well enough (`Campaigns.history_statistics_rows`)
        written, analyze_at = 0, max(ANALYZE_AFTER, campaigns.history_statistics_rows())
        reads = batches.pending_batches(
            campaigns,
            run["id"],
            batch_size,
            first_pass,
            lambda keys: audience.fetch(self.source, plan, aud, keys, only),
            lambda batch, rows: batches.candidates(
                batch,
                rows,
                aud.channel,
                recipient_path,
                consent_path,
                aud.night_consent,
                night_held,
            ),
            lambda rows: self.templates.related(report, rows),
            self.source.consistent if reads_related else None,
        )
        ahead = reading.enter_context(prefetch.ahead(reads, thread=self._can_prefetch()))
        # the store's steps in a thread of their own (`writer`): batch N is written and
        # N+1 checked there, in that order, while this thread renders N+1 ahead
        steps = held.enter_context(writer.StoreSteps(thread=self._can_prefetch()))

        def check(recipients: list[str]) -> rendering.Checked:
            """A batch's first store step: the cap lock, then the clock and the history of
            the batch's `recipients` (`distinct_recipients`, made in the run's thread)."""
            cap = steps.held.enter_context(lock.cap_lock(campaigns, rules, aud.channel))
            # each batch is decided at the time it is decided: the first one after the
            # freeze (minutes for a large set) and any wait for the cap lock, not before them
            at = dataclasses.replace(rules, now=tick())  # quiet hours may begin mid-run
            # under the cap lock, on its connection (None without a cap): as written
            legacy = campaigns.legacy_recipients(within=cap)
            spellings = spelling.history_spellings(aud.channel, recipients, legacy_rows=legacy)
            counts = campaigns.seen(
                list(spellings), wf["id"], run["id"], *policies.windows(at), within=cap
            )
            return rendering.Checked(cap, at, spellings, counts)

        def write(
            checked: rendering.Checked,
            records: list[tuple[str, str | None, str]] | RecordRows,
            skips: list[tuple[str, str]],
            changed: int,
        ) -> None:
            """Its second: records, exclusions, the changed count and the heartbeat in the
            cap lock's transaction, committed with the lock's release."""
            if not campaigns.write_batch(
                run["id"],
                wf["id"],
                owner or None,
                records=records,
                channel=cfg.channel,
                skips=skips,
                changed=changed,
                fresh=first_pass,
                cap=policies.cap_check(checked.rules, aud.channel, checked.spellings),
                within=checked.lock,
                # without a cap of its own, written under the cap's lock all the same: a
                # capped workflow's check never has this batch land before its write
                queue=None
                if rules.policy.frequency_cap or not records or dry_run
                else policies.cap_space(aud.channel),
            ):
                raise taken_over(run["id"])
            steps.held.close()  # the cap lock: this batch's records are committed

        # a dry run writes no record, so the store's history never shows it the recipients
        # its earlier batches would have messaged: it keeps them, and a later batch's
        # target with one is a duplicate, as the run's (round 45)
        dry_sent: set[str] = set()
        items = iter(ahead)
        current = next(items, None)
        last: Any = None  # the last step given: it fails if any before it failed
        if current is not None:
            last = checking = steps.submit(
                functools.partial(check, batches.distinct_recipients(current[2][0]))
            )
        while current is not None:
            # `related`: the values read with the rows (`batches.Related`)
            batch, rows, (candidates, skips, changed), related = current
            ready = rendering.render_ahead(candidates, rows, render, related, needs_consent)
            checked = checking.result()
            if dry_run:
                checked.seen.in_run.update(dry_sent)
            todo, outs = rendering.decide_and_render(
                candidates, rows, checked.seen, checked.rules, render, related, ready
            )
            sent, quiet = rendering.messaged(todo, outs, skips)  # what the write waits for
            if dry_run:
                dry_sent.update(c[1] for c, _ in sent if c[1])
            waiting, rendered = waiting + quiet, rendered + len(sent)
            rendering.count_sizes(sent, msg.message_type, sizes, size_bytes)
            for c, out in sent[: 3 - len(samples)]:  # three per run: related row read again
                [rel] = related([row := rows[c.key]])  # as read with the batch
                samples.append(
                    {
                        "recipient": mask_text(c.recipient or ""),
                        "text": rendering.sample_text(
                            render, report, row, rel, self.mappings.tables()
                        ),
                        "bytes": out.size.bytes if out.size else None,
                        "type": out.size.fits if out.size else msg.message_type,
                    }
                )
            # their COPY text made here, while the store's thread works on the batch before
            records = (
                []
                if dry_run
                else campaigns.record_rows(
                    run["id"], wf["id"], [(c[0], c[1], out.text) for c, out in sent], cfg.channel
                )
            )
            last = steps.submit(functools.partial(write, checked, records, skips, changed))
            written += 0 if dry_run else len(sent)
            bar.update(len(batch))
            if batch_pause:
                time.sleep(batch_pause)
            current = next(items, None)
            if current is not None:
                # the planner sees the history as it now is before the next batch's
                # check; after the last batch no check of this run is left to plan
                if written >= analyze_at:
                    last = steps.submit(campaigns.analyze_history)
                    analyze_at = 2 * written
                last = checking = steps.submit(
                    functools.partial(check, batches.distinct_recipients(current[2][0]))
                )
        if last is not None:
            last.result()  # every step ran: the last batch's records are committed
        bar.close()
        duration = time.perf_counter() - started
        counts = campaigns.counts(run["id"])
        state = campaigns.state(run["id"])
        stats = {
            **counts,
            "rendered_this_pass": rendered,
            "waiting": waiting,
            "changed_in_source": int(state.get("changed_count") or 0),
            "policy": cfg.policy.model_dump(),
            "advertising": msg.advertising,
            "quiet_hours": cfg.quiet_hours if msg.advertising else None,
            "now": now.isoformat(),
            "frozen": frozen,
            "night": msg.advertising and advertising.is_night(now),
            "sizes": {k: {"count": sizes[k], "bytes": size_bytes[k]} for k in sizes},
            "samples": samples,
            "duration_s": round(duration, 3),
            "messages_per_s": round(rendered / duration, 1) if duration else 0.0,
            "audience": {"table": aud.table, "recipient": aud.recipient, "channel": aud.channel},
        }
        missing = [v.name for v in report.variables if v.status in ("missing", "ambiguous")]
        # into this call's period only: a kernel of an earlier period, still running after
        # a resume elsewhere opened another, leaves the later period's counts alone
        store.runs.update(
            run["id"],
            ended=None,
            started=period.get("started_at"),
            target_count=counts["targets"],
            rendered_count=counts["records"] if not dry_run else rendered,
            skipped_count=counts["skipped"],
            sent_count=counts["records"],
            missing_variables=missing,
            stats=stats,
        )
        if not dry_run and rendered:
            if msg.template is not None:
                store.templates.increment_usage(msg.template["id"])
            for status in report.variables:
                if (
                    status.source is not None
                    and status.source.kind == "variable"
                    and status.source.variable
                ):
                    store.variables.record_use(status.source.variable["id"])
        return stats
