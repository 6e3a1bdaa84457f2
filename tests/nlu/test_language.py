"""OtherLanguageDetector: clearly foreign messages are recognised; English, with typos or names, is not."""

from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message

from nlu.components.language import OtherLanguageDetector, other_language


@pytest.mark.parametrize(
    "text",
    [
        "hola, dónde está mi pedido",
        "bonjour, je veux retourner ma commande",
        "hallo, wo ist meine Bestellung bitte",
        "ciao, dove è il mio ordine",
        "olá, onde está a minha encomenda",
        "где мой заказ",
        "我的订单在哪里",
        "أين طلبي",
    ],
)
def test_clearly_foreign_messages_are_detected(text: str) -> None:
    assert other_language(text, min_words=2)


@pytest.mark.parametrize(
    "text",
    [
        "where is my order",
        "wher is my oder A12345",
        "I ordered a piñata from Málaga and it arrived broken",
        "hi",
        "merci",  # one word is not clear enough
        "the de luxe edition la la land",
        "my name is José, can I change my address",
    ],
)
def test_english_is_not_taken_for_another_language(text: str) -> None:
    assert other_language(text, min_words=2) is None


def test_the_component_overrides_the_intent(tmp_path) -> None:
    component = OtherLanguageDetector.create(
        OtherLanguageDetector.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("lang"),
        ExecutionContext(GraphSchema({}), "t"),
    )
    foreign, english = Message({TEXT: "hola, dónde está mi pedido"}), Message({TEXT: "where is my order"})
    for message in (foreign, english):
        message.set(INTENT, {"name": "faq", "confidence": 0.8})
    component.process([foreign, english])
    assert foreign.get(INTENT)["name"] == "other_language"
    assert english.get(INTENT)["name"] == "faq"
