"""LinearIntentClassifier with `retrieval_intents`: it picks the FAQ topic itself, as Rasa's ResponseSelector would."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from rasa.core.actions.action import ActionRetrieveResponse
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.test import _get_full_retrieval_intent
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.linear_features import intent_ranking
from nlu.components.linear_intent import LinearIntentClassifier
from tests.nlu.test_linear_intent import predict as parse
from tests.nlu.test_linear_intent import storage  # noqa: F401  (fixture)

FAQ = {
    "returns": [
        "how do i return an item",
        "can i send something back",
        "what is your returns policy",
        "return a jacket that does not fit",
        "how many days do i have to return",
        "send back my order",
    ],
    "delivery": [
        "how long does delivery take",
        "when will my parcel arrive",
        "how fast is shipping",
        "delivery time to london",
        "how many days for delivery",
        "is next day delivery possible",
    ],
    "payment": [
        "which cards do you accept",
        "can i pay with paypal",
        "do you take apple pay",
        "payment methods",
        "can i pay by bank transfer",
        "is klarna available",
    ],
}
OTHER = {
    "greet": ["hello", "hi there", "good morning", "hey", "hello, anyone there?", "hi, good afternoon"],
    "request_human": [
        "i want to talk to a person",
        "human please",
        "get me an agent",
        "real person",
        "can i speak to someone",
        "connect me to a human",
    ],
}
RESPONSES = {f"utter_faq/{topic}": [{"text": f"All about {topic}."}] for topic in FAQ}


def training_data() -> TrainingData:
    messages = [Message.build(text=t, intent=i) for i, texts in OTHER.items() for t in texts]
    for topic, texts in FAQ.items():
        for text in texts:
            message = Message.build(text=text, intent="faq")
            message.set(INTENT_RESPONSE_KEY, f"faq/{topic}")
            messages.append(message)
    return TrainingData(messages, responses=RESPONSES)


def config(**overrides: Any) -> dict[str, Any]:
    return {**LinearIntentClassifier.get_default_config(), "char_min_df": 1, "retrieval_intents": True, **overrides}


def context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test")


@pytest.fixture()
def trained(storage: LocalModelStorage) -> LinearIntentClassifier:  # noqa: F811
    component = LinearIntentClassifier.create(config(), storage, Resource("linear"), context())
    component.train(training_data())
    return component


def test_learns_each_topic_and_reports_the_base_intent_with_the_topic_selected(trained: LinearIntentClassifier) -> None:
    assert sorted(trained.classes) == ["faq/delivery", "faq/payment", "faq/returns", "greet", "request_human"]
    message = parse(trained, "how long will delivery take to my house")
    assert message.get(INTENT)["name"] == "faq"
    selector = message.get("response_selector")
    assert selector["all_retrieval_intents"] == ["faq"]
    response = selector["faq"]["response"]
    assert response["intent_response_key"] == "faq/delivery"
    assert response["utter_action"] == "utter_faq/delivery"
    assert response["responses"] == [{"text": "All about delivery."}]
    assert response["confidence"] == pytest.approx(message.get(INTENT)["confidence"])
    ranking = selector["faq"]["ranking"]
    assert next(r["intent_response_key"] for r in ranking) == "faq/delivery"
    assert {r["intent_response_key"] for r in ranking} == {"faq/delivery", "faq/payment", "faq/returns"}
    assert [r["confidence"] for r in ranking] == sorted((r["confidence"] for r in ranking), reverse=True)
    assert len({r["id"] for r in ranking}) == 3


def test_intent_ranking_names_a_retrieval_intent_once(trained: LinearIntentClassifier) -> None:
    message = parse(trained, "can i pay with a credit card")
    names = [r["name"] for r in message.get(INTENT_RANKING_KEY)]
    assert names[0] == "faq" and sorted(names) == ["faq", "greet", "request_human"]
    other = parse(trained, "hello there")
    assert other.get(INTENT)["name"] == "greet"
    # The topic is still selected, as ResponseSelector does for every message.
    assert other.get("response_selector")["faq"]["response"]["intent_response_key"].startswith("faq/")


def test_the_ranking_helper_keeps_the_best_sub_intent_and_the_length() -> None:
    names = ["faq/a", "greet", "faq/b", "deny", "stop"]
    ranking = intent_ranking(names, np.array([0.9, 0.5, 0.4, 0.3, 0.2]), length=3)
    assert ranking == [
        {"name": "faq", "confidence": 0.9},
        {"name": "greet", "confidence": 0.5},
        {"name": "deny", "confidence": pytest.approx(0.3)},
    ]


def test_responses_survive_persisting_and_loading(trained: LinearIntentClassifier, storage: LocalModelStorage) -> None:  # noqa: F811
    loaded = LinearIntentClassifier.load(config(), storage, Resource("linear"), context())
    assert loaded.responses == RESPONSES
    response = parse(loaded, "what is your returns policy")
    assert response.get("response_selector")["faq"]["response"]["utter_action"] == "utter_faq/returns"


def test_without_the_option_a_retrieval_intent_is_one_class(storage: LocalModelStorage) -> None:  # noqa: F811
    component = LinearIntentClassifier.create(config(retrieval_intents=False), storage, Resource("linear"), context())
    component.train(training_data())
    assert sorted(component.classes) == ["faq", "greet", "request_human"]
    message = parse(component, "how long does delivery take")
    assert message.get(INTENT)["name"] == "faq" and message.get("response_selector") is None


def test_fallback_classifier_declines_on_the_top_confidence(trained: LinearIntentClassifier) -> None:
    fallback = FallbackClassifier(
        {**FallbackClassifier.get_default_config(), "threshold": 0.5, "ambiguity_threshold": 0.0}
    )
    high_center = LinearIntentClassifier(
        config(center=5.0),
        trained._model_storage,
        trained._resource,
        trained.vectorizers,
        trained.classes,
        trained.coef,
        trained.intercept,
        trained.responses,
    )
    declined = fallback.process([parse(high_center, "how long does delivery take")])[0]
    assert declined.get(INTENT)["name"] == "nlu_fallback"
    kept = fallback.process([parse(trained, "how long does delivery take")])[0]
    assert kept.get(INTENT)["name"] == "faq"


class RecordingNLG:
    """An NLG that records which response it is asked for, as an NLG endpoint would receive it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def generate(self, utter_action: str, tracker: Any, output_channel: str, **kwargs: Any) -> dict[str, Any]:
        self.asked.append(utter_action)
        return {"text": f"response of {utter_action}"}


def test_rasa_retrieval_action_and_story_tests_read_the_topic(trained: LinearIntentClassifier) -> None:
    parsed = parse(trained, "which cards do you take").as_dict_nlu()
    parsed[TEXT] = "which cards do you take"
    assert _get_full_retrieval_intent(parsed) == "faq/payment"
    domain = Domain.from_dict({"intents": ["faq", "greet", "request_human"], "responses": RESPONSES, "actions": []})
    tracker = DialogueStateTracker.from_events("tester", [UserUttered(parsed[TEXT], parsed[INTENT], parse_data=parsed)])
    nlg = RecordingNLG()
    events = asyncio.run(ActionRetrieveResponse("utter_faq").run(CollectingOutputChannel(), nlg, tracker, domain))
    assert nlg.asked == ["utter_faq/payment"]
    assert isinstance(events[0], BotUttered) and events[0].text == "response of utter_faq/payment"
