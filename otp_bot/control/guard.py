"""Who may talk to the control API: rules on headers, pure functions.

A browser can reach a loopback port too: a page on any site may POST to
``http://127.0.0.1:8787/drafts`` (CSRF), or resolve its own name to 127.0.0.1
and read the answers (DNS rebinding). Unless an explicit
``OTP_BOT_CONTROL_TOKEN`` guards every request, a request is refused when:

- it carries ``Origin`` (browsers send it on cross-origin requests and on
  every POST; the CLI and curl never do), or ``Sec-Fetch-Site`` other than
  ``none`` or ``same-origin`` (``same-site`` includes other ports of
  localhost);
- its ``Host`` names neither the bind address nor ``localhost``;

and, always, a POST with a body not declared ``application/json`` (an HTML
form cannot send that type without a CORS preflight).
"""

from __future__ import annotations

from collections.abc import Mapping

JSON = "application/json"
_SAFE_FETCH_SITES = frozenset({"none", "same-origin"})


def foreign(headers: Mapping[str, str], bind_host: str, bind_port: int) -> str | None:
    """Why this request may come from another site's web page; None when it cannot."""
    if "Origin" in headers:
        return "requests from web pages (with an Origin header) are refused"
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in _SAFE_FETCH_SITES:
        return f"{site} requests are refused"
    if not host_allowed(headers.get("Host", ""), bind_host, bind_port):
        return "the Host header is neither this API's address nor localhost"
    return None


def host_allowed(host_header: str, bind_host: str, _bind_port: int) -> bool:
    """``127.0.0.1:8787``, ``localhost:8787``, ``[::1]:8787`` (bound to ::1).

    The name is what DNS rebinding changes; the port is not compared, since a
    forwarded port (``docker run -p 9000:8787``) arrives as ``localhost:9000``.
    """
    host, _port = split_host_header(host_header.strip())
    return host.lower() in {bind_host.lower(), "localhost"}


def split_host_header(value: str) -> tuple[str, int | None]:
    """``[::1]:80`` -> (``::1``, 80); ``example:x`` -> (``example:x``, None): never raises."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = value.partition(":")
    if port and not (port.isascii() and port.isdigit() and len(port) <= 5):
        return value, None
    return host, int(port) if port else None


def is_json(content_type: str) -> bool:
    """``application/json`` (parameters such as charset allowed)."""
    return content_type.split(";", 1)[0].strip().lower() == JSON
