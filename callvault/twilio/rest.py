"""twilio-python's HTTP client, pointed at the configured API base (the simulator in tests and demo)."""

from __future__ import annotations

import logging
from typing import Any

import requests
from twilio.http.http_client import TwilioHttpClient

from callvault.errors import TwilioError, TwilioRateLimited
from callvault.twilio.retry_after import parse_retry_after

logger = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """twilio-python's HTTP client, sending ``https://api.twilio.com/…`` to the configured base URL instead.

    Any other URL is refused: credentials never go to a host callvault was not configured with. A 429 is
    raised here, where the Retry-After header is still at hand (twilio-python's exception drops headers).
    """

    def __init__(self, *, base_url: str, timeout: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout, logger=logger)
        self._base_url = base_url

    def request(  # noqa: PLR0917 - the signature twilio-python calls
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        if url != TWILIO_API and not url.startswith(TWILIO_API + "/"):
            raise TwilioError("refusing to send credentials to a URL outside the Twilio API base")
        target = self._base_url + url[len(TWILIO_API) :]
        try:
            response = super().request(
                method, target, params=params, data=data, headers=headers, auth=auth, timeout=timeout
            )
        except requests.RequestException as exc:
            raise TwilioError(f"Twilio API unreachable: {type(exc).__name__}") from None
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TwilioRateLimited("Twilio rate limit (429 / 20429)", retry_after=retry_after)
        return response

    def log_request(self, kwargs: dict[str, Any]) -> None:
        # twilio-python logs every request and its headers at INFO; one DEBUG line is enough.
        logger.debug("Twilio %s %s", kwargs["method"], kwargs["url"])

    def log_response(self, status_code: int, response: Any) -> None:
        logger.debug("Twilio answered %s", status_code)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
