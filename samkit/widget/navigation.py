"""The annotator's view and embedding actions: zoom, pan, show a point, embed what is in view or everything.

A mixin of :class:`~samkit.widget.annotator.Annotator` (needs ``viewport``, ``session``, ``progress``).
"""

from __future__ import annotations

from .guard import guarded

PREFETCH_MAX = 16  # most windows embedded on their own for the view; more: "Embed all"


class ViewActions:
    """Move the view, and embed tiles for it."""

    @guarded
    def zoom_in(self) -> None:
        self.viewport.zoom_by(2.0)
        self.view_changed()

    @guarded
    def zoom_out(self) -> None:
        self.viewport.zoom_by(0.5)
        self.view_changed()

    @guarded
    def fit(self) -> None:
        self.viewport.fit_all()
        self.view_changed()

    @guarded
    def pan(self, rows: float, cols: float) -> None:
        """Move the view by (rows, cols) screen pixels."""
        self.viewport.pan(rows, cols)
        self.view_changed()

    @guarded
    def show(self, y: float, x: float, zoom: float | None = None) -> None:
        """Centre the view on image (y, x), optionally at ``zoom`` screen pixels per image pixel."""
        if zoom is not None:
            self.viewport.zoom = zoom
        self.viewport.center_on(y, x)
        self.view_changed()

    def view_changed(self) -> None:
        self.redraw()
        self._prefetch()

    def _prefetch(self) -> None:
        if self.prefetch and len(self.session.windows(self.viewport.visible())) <= PREFETCH_MAX:
            self.embed_view()

    @guarded
    def embed_view(self) -> None:
        """Embed the tiles in view, in the background."""
        self.progress.track(lambda progress: self.session.embed(self.viewport.visible(), progress=progress))

    @guarded
    def embed_all(self) -> None:
        """Embed every tile of the image, in the background."""
        self.progress.track(lambda progress: self.session.embed_all(progress=progress))

    @guarded
    def cancel(self) -> None:
        """Stop embedding (a click waiting for its tile says it was cancelled)."""
        self.session.cancel()
        self.progress.stopped()
