"""Prometheus metrics for ``GET /metrics``, in a registry of their own.

A per-process ``CollectorRegistry`` (not prometheus-client's global one), so
several accounts share one set of metrics told apart by the ``account`` label,
and tests build as many as they like. The labelled series are kept compactly
(``series.py``: a dict entry each, not a metric object with a lock per value).
Prometheus conventions: counters end in ``_total``, durations in ``_seconds``,
Unix times in ``_timestamp_seconds``; no ``_created`` series; the label values
of one metric never overlap, so ``sum()`` over a label counts each event once.

    otp_bot_emails_total{account,result}                 trusted | rejected
    otp_bot_mail_unreadable_total{account,error}         error class | too_slow
    otp_bot_checkpoint_submissions_total{account,result} published | checkpoint |
                                                         invalid | expired | error
    otp_bot_drafts{account,state}                        drafts per state (gauge)
    otp_bot_drafts_finished_total{account,outcome,error} published | failed | cancelled,
                                                         and the error type of a failure
    otp_bot_api_errors_total{account,type}               errors/... type of each API error
    otp_bot_email_to_submit_seconds{account,input}       mail seen -> input submitted,
                                                         per input form: code | link | pin
    otp_bot_mailbox_last_progress_timestamp_seconds{account}
                                                         Unix time of the last loop progress
    otp_bot_account_up{account}                          1 healthy, 0 not
    otp_bot_mailbox_lag_seconds{account}                 mail arrival -> seen by the bot
    otp_bot_mailbox_after_use_failures_total{account,action}  failed after-use attempts
    otp_bot_account_held{account}                        1 while the account is held
    otp_bot_api_reachable{account}                       0 while the API fails past retries
    otp_bot_webhook_deliveries_total{account,result}     delivered | failed (attempts)
    otp_bot_build_info{version,python}                   always 1
    process_*, python_info                               prometheus-client's own collectors
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from otp_bot import __version__
from otp_bot.daemon.series import CounterSeries, GaugeSeries, HistogramSeries
from otp_bot.errors import ERROR_TYPES
from otp_bot.solve.drafts import TERMINAL, State

# `_created` series double the number of counter series and mean nothing to
# the queries here (process-wide switch of prometheus-client).
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# The user-visible draft states, always exported (0 included) so that
# dashboards see a series before the first draft reaches a state; the ones
# still under way first, then the terminal ones, each in the enum's order.
DRAFT_STATES = tuple(state.value for state in sorted(State, key=lambda s: s in TERMINAL))
# Dovecot announces mail ~0.5 s after arrival; real providers take seconds to
# a minute. The buckets span that range.
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
INPUT_FORMS = ("code", "link", "pin")
# A finished draft's error becomes a label: the API's known types and otp-bot's
# own reasons (short identifiers) as they are, anything else one bucket, so
# the API cannot grow the number of series.
_KNOWN_API_ERRORS = frozenset(f"errors/{name}" for name in ERROR_TYPES)
_OWN_REASON = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")

CONTENT_TYPE = CONTENT_TYPE_LATEST


def error_label(error: str | None) -> str:
    """A bounded label value for a draft's error ("" when there is none)."""
    if not error:
        return ""
    if error in _KNOWN_API_ERRORS or _OWN_REASON.fullmatch(error):
        return error
    return "errors/other" if error.startswith("errors/") else "other"


class Metrics:
    """Every metric otp-bot exports, bound to one registry."""

    content_type = CONTENT_TYPE  # of ``render()``'s text, for ``GET /metrics``

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        add, labels = self.registry, ["account"]
        self.emails = CounterSeries(
            "otp_bot_emails",
            "E-mails looked at, by verdict (trusted or rejected).",
            [*labels, "result"],
            add,
        )
        self.mail_unreadable = CounterSeries(
            "otp_bot_mail_unreadable",
            "E-mails the reader could not read, by error class (too_slow: over the CPU budget).",
            [*labels, "error"],
            add,
        )
        self.submissions = CounterSeries(
            "otp_bot_checkpoint_submissions",
            "Checkpoint inputs submitted, by the API's answer.",
            [*labels, "result"],
            add,
        )
        self.drafts = GaugeSeries(
            "otp_bot_drafts", "Drafts in each state.", [*labels, "state"], add
        )
        self.finished = CounterSeries(
            "otp_bot_drafts_finished",
            "Drafts that reached a final state, by outcome and error type.",
            [*labels, "outcome", "error"],
            add,
        )
        self.api_errors = CounterSeries(
            "otp_bot_api_errors",
            "Error answers from postpress, by errors/... type (retried attempts included).",
            [*labels, "type"],
            add,
        )
        self.email_to_submit = HistogramSeries(
            "otp_bot_email_to_submit_seconds",
            "Time from an e-mail being seen to its input being submitted, per input form.",
            [*labels, "input"],
            add,
            LATENCY_BUCKETS,
        )
        self.last_progress = GaugeSeries(
            "otp_bot_mailbox_last_progress_timestamp_seconds",
            "Unix time of the mailbox loop's last progress.",
            labels,
            add,
        )
        self.account_up = GaugeSeries(
            "otp_bot_account_up",
            "1 when the account is healthy (mailbox fresh, no account error), else 0.",
            labels,
            add,
        )
        self.mailbox_lag = HistogramSeries(
            "otp_bot_mailbox_lag_seconds",
            "Time from a new e-mail's arrival (INTERNALDATE) to the bot seeing it.",
            labels,
            add,
            LATENCY_BUCKETS,
        )
        self.after_use_failures = CounterSeries(
            "otp_bot_mailbox_after_use_failures",
            "After-use actions (seen, move, delete) that failed and will be tried again.",
            [*labels, "action"],
            add,
        )
        self.account_held = GaugeSeries(
            "otp_bot_account_held",
            "1 while postpress holds the account (an account-level error; drafts wait).",
            labels,
            add,
        )
        self.api_reachable = GaugeSeries(
            "otp_bot_api_reachable",
            "0 while the postpress API fails past the retry budget (drafts retrying), else 1.",
            labels,
            add,
        )
        self.webhook_deliveries = CounterSeries(
            "otp_bot_webhook_deliveries",
            "Webhook delivery attempts, by result (delivered or failed).",
            [*labels, "result"],
            add,
        )
        build = Gauge(
            "otp_bot_build_info",
            "The running otp-bot's version (the value is always 1).",
            ["version", "python"],
            registry=self.registry,
        )
        build.labels(version=__version__, python=platform.python_version()).set(1)

    def set_held(self, account: str, *, held: bool) -> None:
        self.account_held.set(1 if held else 0, account=account)

    def set_api_reachable(self, account: str, *, reachable: bool) -> None:
        self.api_reachable.set(1 if reachable else 0, account=account)

    def webhook(self, account: str, result: str) -> None:
        self.webhook_deliveries.inc(account=account, result=result)

    def unreadable(self, account: str, error: str) -> None:
        self.mail_unreadable.inc(account=account, error=error)

    def email(self, account: str, result: str) -> None:
        self.emails.inc(account=account, result=result)

    def submission(self, account: str, result: str) -> None:
        self.submissions.inc(account=account, result=result)

    def api_error(self, account: str, error_type: str) -> None:
        self.api_errors.inc(account=account, type=error_type)

    def draft_finished(self, account: str, outcome: str, error: str | None) -> None:
        self.finished.inc(account=account, outcome=outcome, error=error_label(error))

    def latency(self, account: str, input_form: str, seconds: float) -> None:
        form = input_form if input_form in INPUT_FORMS else "code"
        self.email_to_submit.observe(max(0.0, seconds), account=account, input=form)

    def mail_lag(self, account: str, seconds: float) -> None:
        self.mailbox_lag.observe(max(0.0, seconds), account=account)

    def after_use_failure(self, account: str, action: str) -> None:
        self.after_use_failures.inc(account=account, action=action)

    def set_drafts(self, account: str, counts: Mapping[str, int]) -> None:
        for state, count in counts.items():
            self.drafts.set(count, account=account, state=state)

    def set_health(self, account: str, *, up: bool, last_progress_unix: float | None) -> None:
        self.account_up.set(1 if up else 0, account=account)
        if last_progress_unix is not None:
            self.last_progress.set(last_progress_unix, account=account)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def count_states(found: Mapping[str, int]) -> Mapping[str, int]:
    """Drafts per state, every known state present (unknown ones kept too)."""
    return {**dict.fromkeys(DRAFT_STATES, 0), **found}
