"""UnknownWordsFallback: words never seen in training send a message to nlu_fallback."""

from __future__ import annotations

from pathlib import Path

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.unknown_words import UnknownWordsFallback, unknown_share


def _message(text: str, intent: str | None = "faq") -> Message:
    message = Message({TEXT: text})
    offset = 0
    tokens = []
    for word in text.split():
        tokens.append(Token(word, offset))
        offset += len(word) + 1
    message.set(TOKENS_NAMES[TEXT], tokens)
    if intent:
        message.set(INTENT, {"name": intent, "confidence": 0.93})
        message.set(INTENT_RANKING_KEY, [{"name": intent, "confidence": 0.93}])
    return message


def _component(tmp_path: Path, vocabulary: set[str] | None = None) -> UnknownWordsFallback:
    storage = LocalModelStorage(tmp_path)
    config = {**UnknownWordsFallback.get_default_config()}
    context = ExecutionContext(GraphSchema({}), "test")
    component = UnknownWordsFallback.create(config, storage, Resource("unknown_words"), context)
    if vocabulary is not None:
        component.vocabulary = vocabulary
    return component


def test_gibberish_goes_to_fallback(tmp_path: Path) -> None:
    component = _component(tmp_path, {"where", "is", "my", "order"})
    [message] = component.process([_message("xkq zzvw plonk grtt")])
    assert message.get(INTENT)["name"] == "nlu_fallback"
    assert message.get(INTENT_RANKING_KEY)[0]["name"] == "nlu_fallback"
    assert message.get(INTENT_RANKING_KEY)[1]["name"] == "faq"


def test_typos_among_known_words_pass(tmp_path: Path) -> None:
    component = _component(tmp_path, {"where", "is", "my", "order"})
    [message] = component.process([_message("wher is my oder")])
    assert message.get(INTENT)["name"] == "faq"


def test_messages_without_words_are_left_alone(tmp_path: Path) -> None:
    component = _component(tmp_path, {"order"})
    [message] = component.process([_message("A12345 2024")])
    assert message.get(INTENT)["name"] == "faq"
    assert unknown_share(_message("12 34"), {"order"}) == 0.0


def test_vocabulary_is_trained_persisted_and_loaded(tmp_path: Path) -> None:
    component = _component(tmp_path)
    resource = component.train(TrainingData([_message("Where is my ORDER", intent=None)]))
    context = ExecutionContext(GraphSchema({}), "test")
    loaded = UnknownWordsFallback.load(component._config, LocalModelStorage(tmp_path), resource, context)
    assert loaded.vocabulary == {"where", "is", "my", "order"}
    [message] = loaded.process([_message("hola que tal")])
    assert message.get(INTENT)["name"] == "nlu_fallback"


def test_an_untrained_component_lets_everything_through(tmp_path: Path) -> None:
    [message] = _component(tmp_path, set()).process([_message("xkq zzvw")])
    assert message.get(INTENT)["name"] == "faq"
