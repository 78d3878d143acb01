"""Seeded two-platform corpus of event posts with known shapes and known leads.

The simulator stands in for real data in the default run and gives the tests a known
answer. Two platforms (A and B) post daily for ``days`` days:

- **Background chatter**: each platform posts ``Poisson(background_per_day)`` posts a
  day, half Chinese and half English, built from everyday words that contain no event
  keyword.
- **Events**: each :class:`SimulatedEvent` has a burst shape over days, the
  skew-normal density ``skewnorm(a=skew, loc=center, scale=width)`` (``skew = 0`` is a
  Gaussian, ``skew > 0`` rises fast and decays slowly, ``skew < 0`` the reverse).
  Platform A's expected number of posts on day ``d`` is ``posts_a`` times the
  density's mass on ``[d, d + 1)``; platform B's is ``posts_b`` times the same mass
  shifted by ``lead`` days. So ``lead > 0`` means A leads B by ``lead`` days and
  ``lead < 0`` means B leads. The daily counts are Poisson draws.
- **Noise mentions**: ``noise_per_day`` posts a day on each platform name a random
  event's keyword among everyday words, spread evenly over the whole period.

Every event post contains one of the event's keywords and two to five of its topic
words, in Chinese, English or both (``language``). Post times are uniform within the
day, written in ISO 8601 with the ``+08:00`` offset. Everything is drawn from
``numpy.random.default_rng(seed)``, so a seed gives the same corpus on every machine.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats

from equipipe.errors import ConfigError
from equipipe.fileio import atomic_path

logger = logging.getLogger(__name__)

TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class SimulatedEvent:
    """One simulated event.

    Parameters
    ----------
    name : str
        Event identifier (as in the config's event list).
    keywords : tuple of str
        Every post of the event contains one of them.
    topic_words_zh, topic_words_en : tuple of str
        Words that the event's Chinese and English posts draw from.
    language : {"zh", "en", "mixed"}
        Language of the posts; ``mixed`` draws each post's language at random.
    center : float
        Location of platform A's burst, in days since the start.
    width : float
        Scale of the burst, in days.
    skew : float
        Skew-normal shape parameter (0 for a Gaussian burst).
    lead : int
        Days by which platform A leads platform B (negative when B leads).
    posts_a, posts_b : int
        Expected number of event posts on platform A and B.
    """

    name: str
    keywords: tuple[str, ...]
    topic_words_zh: tuple[str, ...]
    topic_words_en: tuple[str, ...]
    language: str
    center: float
    width: float
    skew: float
    lead: int
    posts_a: int
    posts_b: int

    def daily_rates(self, days: int, platform: str) -> np.ndarray:
        """Return the expected number of posts on each day for platform ``A`` or ``B``."""
        shift = 0 if platform == "A" else self.lead
        total = self.posts_a if platform == "A" else self.posts_b
        shape = stats.skewnorm(a=self.skew, loc=self.center + shift, scale=self.width)
        edges = np.arange(days + 1, dtype=np.float64)
        return total * np.diff(shape.cdf(edges))


# Everyday words of the background chatter; none contains an event keyword.
BACKGROUND_ZH = (
    "早餐", "咖啡", "周末", "电影", "天气", "上班", "地铁", "学习", "考试", "音乐",
    "跑步", "健身", "旅行", "美食", "小猫", "小狗", "读书", "游戏", "朋友", "加班",
    "晚饭", "购物", "睡觉", "散步", "公园", "奶茶", "追剧", "手机", "电脑", "假期",
)
BACKGROUND_EN = (
    "coffee", "breakfast", "weekend", "movie", "weather", "office", "subway", "study",
    "exam", "music", "running", "gym", "travel", "dinner", "kitten", "puppy", "reading",
    "gaming", "friends", "overtime", "shopping", "sleep", "walk", "park", "tea",
    "series", "phone", "laptop", "holiday", "lunch",
)


def default_events() -> list[SimulatedEvent]:
    """Return the four events of the default corpus (days since 2021-03-01).

    ============  ========  =============  ======  ====  =====================
    name          language  center, width  skew    lead  leader
    ============  ========  =============  ======  ====  =====================
    earthquake    zh        20, 2.5        0       +2    A (microblog)
    launch        en        45, 3          4       -3    B (forum)
    festival      mixed     70, 3          0       +4    A (microblog)
    flood         zh        95, 3          -3      -2    B (forum)
    ============  ========  =============  ======  ====  =====================
    """
    return [
        SimulatedEvent(
            name="earthquake", keywords=("地震",),
            topic_words_zh=("震级", "震中", "余震", "救援", "伤亡", "消防", "帐篷", "物资",
                            "捐款", "灾区", "转移", "安置"),
            topic_words_en=("magnitude", "rescue", "aftershock"),
            language="zh", center=20.0, width=2.5, skew=0.0, lead=2,
            posts_a=420, posts_b=260,
        ),
        SimulatedEvent(
            name="launch", keywords=("rocket", "火箭"),
            topic_words_zh=("发射", "轨道", "卫星"),
            topic_words_en=("orbit", "payload", "booster", "countdown", "liftoff",
                            "satellite", "capsule", "astronauts", "landing", "mission",
                            "spaceport", "telemetry"),
            language="en", center=45.0, width=3.0, skew=4.0, lead=-3,
            posts_a=300, posts_b=380,
        ),
        SimulatedEvent(
            name="festival", keywords=("电影节", "festival"),
            topic_words_zh=("红毯", "影帝", "影后", "开幕", "评委", "颁奖", "导演", "首映"),
            topic_words_en=("premiere", "award", "director", "jury", "trailer",
                            "screening", "actress", "carpet"),
            language="mixed", center=70.0, width=3.0, skew=0.0, lead=4,
            posts_a=500, posts_b=400,
        ),
        SimulatedEvent(
            name="flood", keywords=("洪水", "暴雨"),
            topic_words_zh=("水位", "堤坝", "泄洪", "救灾", "积水", "预警", "转移", "停电",
                            "冲锋舟", "抢险"),
            topic_words_en=("levee", "rainfall"),
            language="zh", center=95.0, width=3.0, skew=-3.0, lead=-2,
            posts_a=350, posts_b=350,
        ),
    ]


@dataclass(frozen=True)
class SimulationSettings:
    """Size and seed of the simulated corpus.

    Parameters
    ----------
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.
    start : str, default "2021-03-01"
        First day (``YYYY-MM-DD``, Asia/Shanghai).
    days : int, default 120
        Number of days.
    background_per_day : float, default 30.0
        Expected background posts per platform and day.
    noise_per_day : float, default 1.0
        Expected keyword mentions outside any burst, per platform and day.
    platforms : tuple of str, default ("microblog", "forum")
        Names of platform A and platform B.
    events : list of SimulatedEvent
        Events; :func:`default_events` by default.
    """

    seed: int = 0
    start: str = "2021-03-01"
    days: int = 120
    background_per_day: float = 30.0
    noise_per_day: float = 1.0
    platforms: tuple[str, str] = ("microblog", "forum")
    events: list[SimulatedEvent] = field(default_factory=default_events)

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ConfigError(f"days={self.days} must be >= 1",
                              field="events.corpora.<corpus>.simulate.days",
                              fix="simulate at least one day")
        if self.background_per_day < 0 or self.noise_per_day < 0:
            raise ConfigError(
                f"background_per_day={self.background_per_day} and "
                f"noise_per_day={self.noise_per_day} must be >= 0",
                field="events.corpora.<corpus>.simulate",
                fix="use non-negative rates",
            )
        if len(self.platforms) != 2 or self.platforms[0] == self.platforms[1]:
            raise ConfigError(f"platforms={self.platforms!r} must be two different names",
                              field="events.corpora.<corpus>.platforms",
                              fix="name platform A and platform B")
        try:
            date.fromisoformat(self.start)
        except ValueError:
            raise ConfigError(f"start={self.start!r} is not a date",
                              field="events.corpora.<corpus>.simulate.start",
                              fix="write it as YYYY-MM-DD") from None


def _event_text(rng: np.random.Generator, event: SimulatedEvent) -> str:
    language = event.language
    if language == "mixed":
        language = "zh" if rng.random() < 0.5 else "en"
    keyword = event.keywords[rng.integers(len(event.keywords))]
    words = event.topic_words_zh if language == "zh" else event.topic_words_en
    chosen = list(rng.choice(words, size=rng.integers(2, 6), replace=True))
    filler = BACKGROUND_ZH if language == "zh" else BACKGROUND_EN
    if rng.random() < 0.3:
        chosen.append(filler[rng.integers(len(filler))])
    chosen.insert(rng.integers(len(chosen) + 1), keyword)
    if language == "zh":
        return "，".join(chosen) + "！"
    return " ".join(chosen).capitalize() + "."


def _background_text(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return "，".join(rng.choice(BACKGROUND_ZH, size=rng.integers(2, 6))) + "。"
    return " ".join(rng.choice(BACKGROUND_EN, size=rng.integers(3, 8))).capitalize() + "."


def _noise_text(rng: np.random.Generator, events: list[SimulatedEvent]) -> str:
    event = events[rng.integers(len(events))]
    keyword = event.keywords[rng.integers(len(event.keywords))]
    words = BACKGROUND_ZH if rng.random() < 0.5 else BACKGROUND_EN
    chosen = list(rng.choice(words, size=rng.integers(2, 5)))
    chosen.insert(rng.integers(len(chosen) + 1), keyword)
    return " ".join(chosen)


def simulate_corpus(settings: SimulationSettings | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate the corpus and the table of true event parameters.

    Returns
    -------
    posts : pandas.DataFrame
        Columns ``platform``, ``time`` (ISO 8601 string with ``+08:00``), ``text`` and
        ``kind`` (``background``, ``noise`` or the event name), sorted by time.
    truth : pandas.DataFrame
        One row per event: its parameters, ``leader`` (platform name, or ``none``)
        and the realised post counts ``n_posts_a`` and ``n_posts_b``.
    """
    settings = settings or SimulationSettings()
    rng = np.random.default_rng(settings.seed)
    start = pd.Timestamp(settings.start).tz_localize(TIMEZONE)
    rows: list[tuple[str, int, str, str]] = []  # (platform, day, text, kind)
    realised: dict[tuple[str, str], int] = {}

    for label, platform in zip(("A", "B"), settings.platforms, strict=True):
        for day in range(settings.days):
            for _ in range(rng.poisson(settings.background_per_day)):
                rows.append((platform, day, _background_text(rng), "background"))
            if settings.events:
                for _ in range(rng.poisson(settings.noise_per_day)):
                    rows.append((platform, day, _noise_text(rng, settings.events), "noise"))
        for event in settings.events:
            counts = rng.poisson(event.daily_rates(settings.days, label))
            realised[(event.name, label)] = int(counts.sum())
            for day, count in enumerate(counts):
                for _ in range(count):
                    rows.append((platform, day, _event_text(rng, event), event.name))

    days = np.array([row[1] for row in rows], dtype=np.int64)
    seconds = rng.uniform(0, 86400, size=len(rows)).astype(np.int64)
    times = start + pd.to_timedelta(days * 86400 + seconds, unit="s")
    posts = pd.DataFrame({
        "platform": [row[0] for row in rows],
        "time": times,
        "text": [row[2] for row in rows],
        "kind": [row[3] for row in rows],
    })
    posts = posts.sort_values(["time", "platform"], kind="stable").reset_index(drop=True)
    posts["time"] = posts["time"].dt.strftime("%Y-%m-%dT%H:%M:%S%z").str.replace(
        r"(\d{2})(\d{2})$", r"\1:\2", regex=True
    )

    truth_rows = []
    for event in settings.events:
        record = asdict(event)
        record["keywords"] = " ".join(event.keywords)
        del record["topic_words_zh"], record["topic_words_en"]
        record["leader"] = (settings.platforms[0] if event.lead > 0
                            else settings.platforms[1] if event.lead < 0 else "none")
        record["n_posts_a"] = realised[(event.name, "A")]
        record["n_posts_b"] = realised[(event.name, "B")]
        truth_rows.append(record)
    truth = pd.DataFrame(truth_rows)
    logger.info(
        "simulated %d posts over %d days on %s and %s (%d events, seed %d)",
        len(posts), settings.days, *settings.platforms, len(settings.events), settings.seed,
    )
    return posts, truth


def write_corpus(
    posts: pd.DataFrame, truth: pd.DataFrame,
    posts_path: str | os.PathLike, truth_path: str | os.PathLike,
) -> None:
    """Write the posts and the truth table as UTF-8 CSV files, atomically."""
    with atomic_path(posts_path) as temp:
        posts.to_csv(temp, index=False, encoding="utf-8")
    with atomic_path(truth_path) as temp:
        truth.to_csv(temp, index=False, encoding="utf-8")
