"""Tokenise Chinese and other text into words, without stop words.

Runs of Han characters go to jieba (a dictionary-based Chinese word segmenter); every
other run of word characters is one token, case-folded (``str.casefold``). Stop words
come from files given in the config, or from the default lists shipped with the
package (``data/stopwords_zh.txt`` and ``data/stopwords_en.txt``).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from equipipe.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

# CJK Unified Ideographs, Extension A and the Compatibility Ideographs block.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A run of Han characters, or a run of word characters that are not Han.
_TOKEN_RUN = re.compile(rf"(?P<han>[{_HAN}]+)|(?P<word>[^\W{_HAN}]+)")
_DIGITS = re.compile(r"^[\d_]+$")

DEFAULT_STOPWORD_FILES = ("stopwords_zh.txt", "stopwords_en.txt")


def load_stopwords(paths: Iterable[str | os.PathLike] | None = None) -> frozenset[str]:
    """Read stop words, one per line, ``#`` starting a comment.

    Parameters
    ----------
    paths : iterable of path, optional
        UTF-8 text files. When None, the default Chinese and English lists shipped
        with the package are used. Words are case-folded.

    Raises
    ------
    InputError
        If a file is missing or not valid UTF-8.
    """
    words: set[str] = set()
    if paths is None:
        package_data = resources.files("equipipe.events") / "data"
        texts = [(name, (package_data / name).read_text(encoding="utf-8"))
                 for name in DEFAULT_STOPWORD_FILES]
    else:
        texts = []
        for path in paths:
            try:
                texts.append((os.fspath(path), Path(path).read_text(encoding="utf-8")))
            except FileNotFoundError:
                raise InputError(
                    "stop-word file not found", path=path,
                    fix="check events.tokenize.stopwords in the config, or set it to null",
                ) from None
            except UnicodeDecodeError as error:
                raise InputError(
                    f"stop-word file is not valid UTF-8 ({error.reason} at byte {error.start})",
                    path=path, fix="re-encode the file as UTF-8",
                ) from None
    for _, text in texts:
        for line in text.splitlines():
            word = line.split("#", 1)[0].strip().casefold()
            if word:
                words.add(word)
    return frozenset(words)


class Tokenizer:
    """Split Chinese and other text into case-folded words, dropping stop words.

    Parameters
    ----------
    stopwords : frozenset of str, optional
        Words to drop (case-folded). Defaults to the shipped Chinese and English
        lists (:func:`load_stopwords` with no argument).
    user_dict : path, optional
        jieba user dictionary: one ``word [frequency] [part-of-speech]`` per line,
        UTF-8. Use it for event terms that jieba would split.
    extra_words : iterable of str, optional
        Further words for jieba to keep whole (for example the event keywords).
    min_length : int, default 2
        Shortest token kept, in characters. Single Han characters and single letters
        are mostly function words or noise in short posts.
    drop_numbers : bool, default True
        Drop tokens made only of digits.

    Notes
    -----
    Each instance has its own ``jieba.Tokenizer``, whose dictionary cache goes to the
    system temporary directory (``tempfile.gettempdir()``). jieba's loading messages
    are DEBUG records of the ``jieba`` logger, which is set to WARNING so that they do
    not reach stderr.
    """

    def __init__(
        self,
        stopwords: frozenset[str] | None = None,
        user_dict: str | os.PathLike | None = None,
        extra_words: Iterable[str] = (),
        min_length: int = 2,
        drop_numbers: bool = True,
    ) -> None:
        if min_length < 1:
            raise ConfigError(
                f"min_length={min_length} must be >= 1",
                field="events.tokenize.min_length",
                fix="set events.tokenize.min_length to 1 or more",
            )
        self.stopwords = load_stopwords() if stopwords is None else stopwords
        self.min_length = min_length
        self.drop_numbers = drop_numbers
        self._jieba = _make_jieba()
        if user_dict is not None:
            path = Path(user_dict)
            if not path.is_file():
                raise InputError(
                    "jieba user dictionary not found", path=path,
                    fix="check events.tokenize.user_dict in the config, or set it to null",
                )
            self._jieba.load_userdict(os.fspath(path))
        for word in extra_words:
            if _TOKEN_RUN.fullmatch(word) and re.search(f"[{_HAN}]", word):
                self._jieba.add_word(word)

    def tokenize(self, text: str) -> list[str]:
        """Return the words of ``text`` in order, case-folded, without stop words."""
        tokens: list[str] = []
        for match in _TOKEN_RUN.finditer(text):
            if match.lastgroup == "han":
                candidates = self._jieba.lcut(match.group(), HMM=True)
            else:
                candidates = [match.group().casefold()]
            for token in candidates:
                if self._keep(token):
                    tokens.append(token)
        return tokens

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        """Return the words of each text (see :meth:`tokenize`)."""
        return [self.tokenize(text) for text in texts]

    def _keep(self, token: str) -> bool:
        if len(token) < self.min_length or token in self.stopwords:
            return False
        return not (self.drop_numbers and _DIGITS.match(token))


def _make_jieba():
    import jieba

    # jieba logs "Building prefix dict ..." at DEBUG on a handler of its own that
    # writes to stderr; raise its level so that nothing reaches stderr unless a
    # caller lowers it again.
    jieba_logger = logging.getLogger("jieba")
    if jieba_logger.level < logging.WARNING:
        jieba_logger.setLevel(logging.WARNING)
    segmenter = jieba.Tokenizer()
    segmenter.tmp_dir = tempfile.gettempdir()
    return segmenter
