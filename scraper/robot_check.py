"""Amazon's robot check, recognised from a response: its captcha form, its prompt, or a 503 about automated
access. A plain 503 (an overloaded server) is not one: it is retried like any other error.
"""

from __future__ import annotations

_CAPTCHA_MARKERS = (
    "/errors/validatecaptcha",  # the captcha form's action
    "enter the characters you see below",
    "type the characters you see in this image",
)
_BLOCK_MARKERS = ("automated access", "api-services-support@amazon.com")


def is_robot_check(status: int, text: str) -> bool:
    """Whether a response (status and body) is the robot check rather than the page asked for."""
    lowered = text[:20000].lower()
    if any(marker in lowered for marker in _CAPTCHA_MARKERS):
        return True
    return status in (503, 429) and any(marker in lowered for marker in _BLOCK_MARKERS)
