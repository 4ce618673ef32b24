"""The local control API: the daemon's server (aiohttp.web) and the CLI's client (urllib).

May import: config, errors, logs. The server sees accounts and metrics through
protocols (``ControlledAccount``, ``MetricsPage``), so it does not import the
daemon that serves it. Import contracts: pyproject.toml, ``[tool.importlinter]``.
"""
