"""Stand-in technology exchanges serving exchange API v1 (connectors/contracts/README.md).

- ``data``: deterministic synthetic listings and transactions, dirt, and the change overlay.
- ``app``: the Starlette app: each exchange under its own path prefix (its base URL), with the
  contract endpoints and stand-in-only admin endpoints.
- ``__main__``: ``python -m local.exchange`` serves one or several exchanges with uvicorn.
- ``process``: ``run_exchange()`` / ``run_exchanges()`` run it as a subprocess.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

# The variable the server reads its secret from (not a secret itself). Each exchange's API key
# is derived from it, so one secret serves several exchanges with distinct keys.
SECRET_ENV = "STANDIN_EXCHANGE_SECRET"  # noqa: S105


def api_key_for(secret: str, exchange_id: str) -> str:
    """The API key the stand-in issues to the pipeline for ``exchange_id``."""
    digest = hmac.new(secret.encode(), exchange_id.encode(), hashlib.sha256).digest()
    return "exk_" + base64.urlsafe_b64encode(digest[:24]).decode()
