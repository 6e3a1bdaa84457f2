"""Help-center search: hybrid retrieval over articles' passages, a calibrated answer decision, trimmed answers.

Pure: numpy and the sentence encoder, no database, Telegram or Rasa. Storage hands passages and stored vectors in
(`Index.put_article`), and takes the new vectors back (`Index.export_vectors`, `HelpCenter.put_article_async`).
"""

from bot.kb.center import Answer, HelpCenter
from bot.kb.decision import Model, load_model
from bot.kb.index import Index, Passage
from bot.kb.search import FEATURES, Hit, Weights, rank
from bot.kb.trim import trim

__all__ = [
    "FEATURES",
    "Answer",
    "HelpCenter",
    "Hit",
    "Index",
    "Model",
    "Passage",
    "Weights",
    "load_model",
    "rank",
    "trim",
]
