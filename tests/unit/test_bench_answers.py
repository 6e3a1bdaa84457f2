"""bench/answers.py: a scripted step's latency ends at its expected answer, from the domain's responses."""

from __future__ import annotations

import pytest

from bench.answers import Step, answer_patterns, answers, domain_responses, response_names, template_pattern

RESPONSES = {
    "utter_greet": [{"text": "Hello! How can I help?"}],
    "utter_greet_name": [{"text": "Hi {first_name}, welcome!"}],
    "utter_faq/delivery_time": [{"text": "Delivery takes 2–4 working days (£4.99)."}],
    "utter_faq/returns_policy": [{"text": "You can return anything within 30 days."}],
    "utter_anything_else": [{"text": "Is there anything else I can help you with?"}],
    "utter_complaint_ack": [{"text": "{first_name}, I'm so sorry about {complaint_problem_text}."}],
    "utter_complaint_ack_no_name": [{"text": "I'm so sorry about {complaint_problem_text}."}],
    "utter_complaint_resumed": [{"text": "Let's carry on."}],
    "utter_complaint_stopped": [{"text": "I've stopped here."}],
    "utter_ask_complaint_description": [{"text": "What happened?"}],
    "utter_help_center_answer": [{"text": "{passage}\n\nFrom our help center: “{article_title}”\n\nDid that help?"}],
}


def expected(intent: str, text: str) -> bool:
    return answers(Step("…", intent), text, answer_patterns(intent, RESPONSES))


def test_a_question_is_answered_by_its_own_faq_response_only() -> None:
    assert expected("faq/delivery_time", "Delivery takes 2–4 working days (£4.99).")
    assert expected("faq/delivery_time", "  Delivery takes 2–4 working days (£4.99).\n"), "surrounding space"
    assert not expected("faq/delivery_time", "You can return anything within 30 days."), "another topic's answer"
    assert not expected("faq/delivery_time", "Delivery takes 2-4 working days"), "a part or a look-alike"
    assert not expected("faq/delivery_time", "One moment. Delivery takes 2–4 working days (£4.99)."), "a whole message"


def test_a_question_the_classifier_is_unsure_of_may_be_answered_by_an_article() -> None:
    article = "Parcels go out daily.\n\nFrom our help center: “Shipping”\n\nDid that help?"
    assert expected("faq/delivery_time", article)
    assert not expected("greet", article)
    assert response_names("faq/returns_policy", RESPONSES) == ["utter_faq/returns_policy", "utter_help_center_answer"]


def test_an_acknowledgement_or_the_follow_up_never_answers() -> None:
    for intent in ("faq/delivery_time", "greet", "complain", "stop"):
        assert not expected(intent, "Is there anything else I can help you with?")
        assert not expected(intent, "")
        assert not expected(intent, None)


def test_slots_stand_for_some_text() -> None:
    assert expected("greet", "Hi Bench3, welcome!")
    assert expected("greet", "Hello! How can I help?")
    assert not expected("greet", "Hi , welcome!"), "a slot is never empty"
    assert expected("complain", "Bench1, I'm so sorry about the damaged parcel.")
    assert expected("complain", "I'm so sorry about the damaged parcel.")
    assert expected("complain", "Let's carry on.")
    assert not expected("complain", "What happened?"), "the form's question comes after the answer"
    assert expected("stop", "I've stopped here.")


def test_the_answering_responses_are_found_by_name_and_prefix() -> None:
    assert response_names("complain", RESPONSES) == [
        "utter_complaint_ack",
        "utter_complaint_ack_no_name",
        "utter_complaint_resumed",
    ]
    with pytest.raises(KeyError):
        response_names("faq/unknown_topic", RESPONSES)


def test_a_template_is_literal_apart_from_its_slots() -> None:
    pattern = template_pattern("Order {order} costs $5 (really?)")
    assert pattern.fullmatch("Order A123 costs $5 (really?)")
    assert not pattern.fullmatch("Order A123 costs 5 really")


def test_every_intent_the_scripts_use_has_answers_in_the_shipped_domain() -> None:
    responses = domain_responses()
    faq = [name for name in responses if name.startswith("utter_faq/")]
    assert faq, "the domain answers FAQ topics"
    for intent in ("greet", "complain", "stop", *(name.removeprefix("utter_") for name in faq)):
        assert answer_patterns(intent, responses), intent
