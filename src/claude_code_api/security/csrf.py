"""Cross-site request forgery checks on the admin site's state-changing requests; pure.

The threat: while an administrator is logged in, a page on another site makes their browser send a form
post or a request to the gateway ("revoke every key", "create a key with my token"), and the browser
attaches the session cookie. Three independent checks stop it, so that one browser quirk is not enough:

1. The session cookie is `SameSite=Strict`: the browser does not send it on requests another site starts.
2. Every state-changing request from a session must carry a token that only the gateway's own pages
   know: a hidden `csrf_token` form field, or an `X-CSRF-Token` header on `fetch()` calls. The token is
   an HMAC of the session id, so it needs no storage and dies with the session.
3. The `Origin` header (or, when a browser leaves it out, the `Referer`) must name the site itself (its
   configured origins, security/origins.py; never what the Host header says), and `Sec-Fetch-Site` must
   not say the request came from another site.

Requests authenticated with `Authorization: Bearer <ADMIN_PASSWORD>` need none of this: a browser never
adds that header by itself, so there is no ambient credential to forge with.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from claude_code_api.security.origins import SiteOrigins

CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# Values of Sec-Fetch-Site that a request of the site's own pages, or one the user typed, carries.
_SAME_SITE_FETCHES = frozenset({"same-origin", "none"})


def csrf_token(admin_key: bytes, purpose: str, session_id: str) -> str:
    """Returns the token that forms and fetch() calls of a session (or of a login form) must send back."""
    message = f"csrf:{purpose}:{session_id}".encode()
    return hmac.new(admin_key, message, hashlib.sha256).hexdigest()


def csrf_token_matches(expected: str, given: str | None) -> bool:
    """Tells whether `given` is the expected token, in constant time."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))


def origin_problem(headers: Mapping[str, str], site: SiteOrigins) -> str | None:
    """Returns why a request does not come from one of the `site`'s origins, or None.

    `headers` are the request's, with lower-case names.
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in _SAME_SITE_FETCHES:
        return f"the browser says this request came from another site (Sec-Fetch-Site: {fetch_site})"
    origin = headers.get("origin")
    if origin == "null":
        # Sandboxed frames and data: URLs send an opaque origin: never one of our pages.
        return "its Origin is opaque (null)"
    if origin is not None:
        if not site.allows(origin):
            return f"its Origin {origin} is not {site}"
        return None
    referer = headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if not site.allows(f"{parts.scheme}://{parts.netloc}"):
            return f"its Referer is not a page of {site}"
        return None
    return "it carries neither an Origin nor a Referer header"
