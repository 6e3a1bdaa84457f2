"""OtherLanguageDetector: a message clearly not in English gets the intent `other_language`.

The shipped assistant understands English only. Without a language model to
download, two signals are cheap and reliable on customer messages: the script
(Cyrillic, Arabic, CJK… letters are not English), and function words, which
every language uses constantly and which rarely overlap between languages.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

INTENT_NAME = "other_language"
ENGLISH = {
    "the",
    "a",
    "an",
    "and",
    "or",
    "but",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "i",
    "you",
    "he",
    "she",
    "it",
    "we",
    "they",
    "me",
    "my",
    "your",
    "our",
    "their",
    "this",
    "that",
    "these",
    "those",
    "to",
    "of",
    "in",
    "on",
    "at",
    "for",
    "with",
    "from",
    "by",
    "about",
    "what",
    "where",
    "when",
    "why",
    "how",
    "which",
    "who",
    "can",
    "could",
    "would",
    "should",
    "will",
    "do",
    "does",
    "did",
    "not",
    "no",
    "yes",
    "please",
    "thanks",
    "thank",
    "hi",
    "hello",
    "have",
    "has",
    "had",
    "am",
    "any",
    "some",
    "there",
    "here",
}
FUNCTION_WORDS = {
    "es": "el la los las de del que y en un una por para con no es mi mis su pero como está estoy hola gracias dónde cuándo quiero pedido",
    "fr": "le la les de des du que et en un une pour pas est je mon ma mes vous nous avec bonjour merci où quand veux commande",
    "de": "der die das und ist nicht ich mein meine mit für auf ein eine zu den dem wo wann hallo danke bitte bestellung möchte",
    "it": "il lo la gli le di che e non è un una per con mio mia sono ciao grazie dove quando voglio ordine",
    "pt": "o os as de que e não é um uma para com meu minha olá obrigado obrigada onde quando quero encomenda pedido",
    "nl": "de het een en is niet ik mijn met voor op van waar wanneer hallo dank bedankt bestelling wil",
    "pl": "i w nie jest na z że to się mój moja dla gdzie kiedy dzień dobry dziękuję zamówienie chcę",
    "tr": "ve bir bu için ile değil ben benim nerede ne zaman merhaba teşekkürler sipariş istiyorum",
}
FOREIGN = {lang: set(words.split()) for lang, words in FUNCTION_WORDS.items()}
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _non_latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum("LATIN" not in unicodedata.name(c, "LATIN") for c in letters) / len(letters)


def other_language(text: str, min_words: int) -> str | None:
    """The language a message is clearly written in, when that is not English; None otherwise."""
    if _non_latin_share(text) > 0.5:
        return "non-latin script"
    words = [w.lower() for w in WORD.findall(text)]
    if len(words) < min_words:
        return None
    distinct = set(words)
    english = len(distinct & ENGLISH)
    best, hits = max(((lang, len(distinct & vocab)) for lang, vocab in FOREIGN.items()), key=lambda pair: pair[1])
    # Distinct words, and well ahead of English: a title or a name ("La La Land") must not tip it.
    return best if hits >= 2 and hits > 2 * english else None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class OtherLanguageDetector(GraphComponent, IntentClassifier):
    """Overrides the predicted intent with `other_language` for messages clearly in another language."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"min_words": 2, "confidence": 0.9}

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> OtherLanguageDetector:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        """Mark the messages that are clearly not English."""
        for message in messages:
            if message.get(INTENT) is None or not other_language(message.get(TEXT) or "", self._config["min_words"]):
                continue
            detected = {INTENT_NAME_KEY: INTENT_NAME, PREDICTED_CONFIDENCE_KEY: self._config["confidence"]}
            message.set(INTENT, detected, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [detected, *(message.get(INTENT_RANKING_KEY) or [])], add_to_output=True)
        return messages
