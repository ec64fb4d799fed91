"""Event handlers that never let an exception reach the notebook: it becomes a message in the widget."""

from __future__ import annotations

import functools
import logging

from ..errors import SamkitError

log = logging.getLogger("samkit.widget.annotator")


def guarded(method):
    """Run an event handler so that no exception reaches the notebook: it becomes a message."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except SamkitError as e:
            self.say(str(e), error=True)
        except Exception as e:  # a bug: keep the widget alive and say what happened
            log.warning("annotator: %s failed", method.__name__, exc_info=True)
            self.say(f"unexpected error ({type(e).__name__}: {e})", error=True)

    return run
