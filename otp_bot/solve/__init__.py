"""The draft life cycle and the per-account worker.

Pure core (no I/O): ``drafts`` (states, events, the transition table), ``match``
(which evidence a draft may use), ``respond`` (what an API answer makes a draft
do). Shell: ``intake`` (mail -> stored evidence), ``steps`` and ``worker``
(drive drafts through imap, postpress and store). The life cycle: docs/lifecycle.md.
"""
