"""The draft life cycle and the per-account worker.

Pure core (no I/O): ``drafts`` (states, events, the transition table), ``match``
(which evidence a draft may use), ``respond`` (what an API answer makes a draft
do), ``hold`` (what a probe shows, backoff). Shell: ``worker``, one per
account, owns its parts, each built with what it needs: ``ledger`` (commit a
move), ``intake`` (mail -> stored evidence), ``steps`` (publish, submit, wait
for mail), ``outages`` and ``holding`` (re-sends, held accounts), ``controls``
(add, retry, cancel), ``after_use`` and ``loop``; they drive imap, postpress
and store. The life cycle: docs/lifecycle.md.
"""
