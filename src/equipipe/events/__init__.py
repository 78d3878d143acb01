"""Cross-platform event popularity (DancingLines).

The module turns timestamped text posts from two platforms into one popularity time
series per platform and event, then aligns the two series to say which platform leads
and how similar the trends are. The method follows T. Gao et al., "DancingLines: An
Analytical Scheme to Depict Cross-Platform Event Popularity", DEXA 2018
(arXiv:1712.08550).

Steps and the files that implement them:

- :mod:`equipipe.events.ingest`: read CSV, JSON Lines or Parquet posts into a table
  with time slots.
- :mod:`equipipe.events.tokenize`: jieba for Chinese, a Unicode word tokenizer for
  other text, stop words.
- :mod:`equipipe.events.filtering`: events by keywords and a date window.
- :mod:`equipipe.events.wordgraph`: Word2Vec, the word graph and TextRank weights.
- :mod:`equipipe.events.popularity`: TF-SW popularity and the raw-frequency baseline.
- :mod:`equipipe.events.simulator`: a seeded two-platform corpus with known leads.
- ``alignment``, ``metrics`` and ``plots``: wDTW-CD, its baselines, trend metrics and
  figures.
"""
