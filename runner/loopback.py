"""Whether a host or URL names this machine: the one rule for every loopback exception.

Plain http is allowed only on loopback (downloads from a local sandbox, a `--base-url`
that would otherwise send the key unencrypted), and the sandbox listens only there.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """Tell whether `host` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Tell whether `url` points at this machine."""
    return is_loopback_host(urlsplit(url).hostname or "")
