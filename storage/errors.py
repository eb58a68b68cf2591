"""Errors the gallery raises: one readable line each, so the CLI and the GUI can show them as they are."""

from __future__ import annotations


class GalleryError(RuntimeError):
    """The gallery cannot do what was asked: an unusable file, an unknown person, a bad argument."""


class GalleryBusyError(GalleryError):
    """Another process held the write lock longer than the busy timeout."""


class QueueFullError(GalleryError):
    """The writer's bounded queue stayed full: the sightings named in the message were not recorded."""


class AlarmConflict(GalleryError):
    """Someone else (another console on the same gallery) changed the alarm first: the message says who and when."""
