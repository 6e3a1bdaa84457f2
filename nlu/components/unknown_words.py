"""UnknownWordsFallback: a message made of words the assistant never saw goes to nlu_fallback.

Linear classifiers over character n-grams give some intent a high score even
for gibberish or another language; no training example supports that score.
Whether a message's words occur in the training data at all is a cheap,
independent check of whether the classifier can know what it is about.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

log = logging.getLogger(__name__)
VOCABULARY_FILE = "vocabulary.json"


def words(message: Message) -> list[str]:
    """The alphabetic words of a tokenized message, lower-cased (numbers and codes are entities' business)."""
    return [token.text.lower() for token in message.get(TOKENS_NAMES[TEXT]) or [] if token.text.isalpha()]


def unknown_share(message: Message, vocabulary: set[str]) -> float:
    """The share of the message's words that never occur in training; 0.0 for a message without words."""
    found = words(message)
    return sum(word not in vocabulary for word in found) / len(found) if found else 0.0


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class UnknownWordsFallback(GraphComponent, IntentClassifier):
    """Predicts nlu_fallback when at least `threshold` of a message's words are unknown."""

    @classmethod
    def required_components(cls) -> list[type]:
        # Needs tokens; it must also come after the intent classifier in config.yml,
        # which Rasa cannot require of a trainable component (classifiers train in parallel).
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"threshold": 0.75, "confidence": 0.5}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: set[str] | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary or set()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UnknownWordsFallback:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Collect every word of the training examples."""
        self.vocabulary = {word for example in training_data.training_examples for word in words(example)}
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(json.dumps(sorted(self.vocabulary)))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> UnknownWordsFallback:
        try:
            with model_storage.read_from(resource) as directory:
                vocabulary = set(json.loads((directory / VOCABULARY_FILE).read_text()))
        except ValueError:
            log.warning("UnknownWordsFallback has no trained vocabulary; it will let every message through")
            vocabulary = set()
        return cls(config, model_storage, resource, vocabulary)

    def process(self, messages: list[Message]) -> list[Message]:
        """Replace the predicted intent with nlu_fallback where the words are mostly unknown."""
        if not self.vocabulary:
            return messages
        for message in messages:
            if message.get(INTENT) is None or unknown_share(message, self.vocabulary) < self._config["threshold"]:
                continue
            fallback = {
                INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME,
                PREDICTED_CONFIDENCE_KEY: self._config["confidence"],
            }
            message.set(INTENT, fallback, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [fallback, *(message.get(INTENT_RANKING_KEY) or [])], add_to_output=True)
        return messages
