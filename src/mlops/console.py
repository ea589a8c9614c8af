"""Lines for the person at the terminal or the CI log.

Input: a message. Output: the message on stdout (flushed, so it interleaves with subprocess
output in order) and at debug level in the log, so it is not said twice at the default level.
"""

from __future__ import annotations

import logging

log = logging.getLogger("mlops")


def say(message: str) -> None:
    """Print ``message`` for the reader of the log; also log it at debug level."""
    print(message, flush=True)
    log.debug(message)
