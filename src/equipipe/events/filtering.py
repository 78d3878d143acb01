"""Select the posts of one event: a keyword match inside a date window.

A post belongs to an event when its text contains at least one of the event's
keywords (case-insensitive substring match, so a Chinese keyword needs no word
segmentation) and its time falls inside the event's date window.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

import pandas as pd

from equipipe.errors import ConfigError

logger = logging.getLogger(__name__)

# Event names become folder names and Snakemake wildcard values.
EVENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class EventSpec:
    """One event of a corpus.

    Parameters
    ----------
    name : str
        Identifier used in output paths: letters, digits, ``_`` and ``-``.
    keywords : tuple of str
        A post matches when its text contains any keyword (case-insensitive).
    start, end : datetime.date or None
        First and last day of the window, inclusive, in the corpus time zone. None
        leaves that side open.
    """

    name: str
    keywords: tuple[str, ...]
    start: date | None = None
    end: date | None = None

    @classmethod
    def from_config(cls, entry: dict) -> EventSpec:
        """Build an event from a config entry ``{name, keywords, start, end}``.

        Raises
        ------
        ConfigError
            If the name is not a valid identifier, there is no non-blank keyword, a
            date is not ``YYYY-MM-DD``, or ``start`` is after ``end``.
        """
        name = str(entry.get("name", ""))
        if not EVENT_NAME.match(name):
            raise ConfigError(
                f"event name {name!r} is not valid",
                field="events.corpora.<corpus>.events[].name",
                fix="use letters, digits, '_' and '-' only (the name becomes a folder)",
            )
        keywords = tuple(str(word).strip() for word in entry.get("keywords") or ())
        keywords = tuple(word for word in keywords if word)
        if not keywords:
            raise ConfigError(
                f"event {name!r} has no keywords",
                field=f"events ({name}).keywords",
                fix="list at least one non-blank keyword",
            )
        start = _parse_date(entry.get("start"), name, "start")
        end = _parse_date(entry.get("end"), name, "end")
        if start is not None and end is not None and start > end:
            raise ConfigError(
                f"event {name!r} starts on {start} after it ends on {end}",
                field=f"events ({name}).start",
                fix="swap start and end",
            )
        return cls(name=name, keywords=keywords, start=start, end=end)


def _parse_date(value, name: str, key: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"event {name!r}: {key}={value!r} is not a date",
            field=f"events ({name}).{key}",
            fix="write the date as YYYY-MM-DD",
        ) from None


def keyword_mask(texts: pd.Series, keywords: tuple[str, ...]) -> pd.Series:
    """Return True for each text that contains any keyword, ignoring case."""
    pattern = "|".join(re.escape(word.casefold()) for word in keywords)
    return texts.str.casefold().str.contains(pattern, regex=True, na=False).astype(bool)


def window_bounds(event: EventSpec, timezone: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Return the window as ``[start, stop)`` timestamps in ``timezone`` (None when open)."""
    start = None if event.start is None else pd.Timestamp(event.start).tz_localize(timezone)
    stop = None
    if event.end is not None:
        stop = (pd.Timestamp(event.end) + pd.Timedelta(days=1)).tz_localize(timezone)
    return start, stop


def select_event_posts(posts: pd.DataFrame, event: EventSpec) -> pd.DataFrame:
    """Return the posts of ``event``: a keyword match inside the date window.

    Parameters
    ----------
    posts : pandas.DataFrame
        Posts as returned by :func:`equipipe.events.ingest.read_posts`, with
        time-zone-aware ``time`` and a ``text`` column.
    event : EventSpec
        The event. Its dates are read in the time zone of ``posts["time"]``.

    Returns
    -------
    pandas.DataFrame
        The matching rows, in their input order, with a fresh index.
    """
    mask = keyword_mask(posts["text"], event.keywords)
    if len(posts):
        start, stop = window_bounds(event, str(posts["time"].dt.tz))
        if start is not None:
            mask &= posts["time"] >= start
        if stop is not None:
            mask &= posts["time"] < stop
    selected = posts[mask].reset_index(drop=True)
    logger.info(
        "event %s: %d of %d posts match %d keywords",
        event.name, len(selected), len(posts), len(event.keywords),
    )
    return selected


def event_slots(event: EventSpec, posts: pd.DataFrame, slot: str, timezone: str) -> pd.DatetimeIndex:
    """Return every slot start of the event's window.

    An open side of the window ends at the first or last slot of ``posts`` (the
    event's posts); with no post and an open side the result is empty.
    """
    from equipipe.events.ingest import assign_slots, slot_range

    start, stop = window_bounds(event, timezone)
    bounds = []
    for bound, fallback in ((start, "min"), (stop, "max")):
        if bound is not None:
            if fallback == "max":
                bound = bound - pd.Timedelta(nanoseconds=1)
            bounds.append(assign_slots(pd.Series([bound]), slot).iloc[0])
        elif len(posts):
            bounds.append(getattr(posts["slot"], fallback)())
        else:
            return pd.DatetimeIndex([], tz=timezone)
    return slot_range(bounds[0], bounds[1], slot)
