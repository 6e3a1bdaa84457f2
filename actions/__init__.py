"""Custom Rasa actions, served by rasa_sdk through our launcher (`frontline actions`: actions/launcher.py)."""

from rasa_sdk.plugin import plugin_manager

from actions import server
from actions.acknowledge import ActionAcknowledgeComplaint
from actions.complaints import (
    ActionAskComplaintConfirmed,
    ActionComplaintHandoff,
    ActionKeepPhoto,
    ActionStopComplaint,
    ValidateComplaintForm,
)
from actions.faq import ActionAnswerFaq
from actions.greeting import ActionGreetCustomer
from actions.handoff import ActionFallback, ActionHandoff
from actions.kb_feedback import ActionAnswerFromHelpCenter, ActionArticleFeedback
from actions.tickets import ActionListTickets, ActionSubmitComplaint

# rasa_sdk imports this package before it builds its web app, so the extensions are in place for it.
if not plugin_manager().is_registered(server):
    plugin_manager().register(server)

__all__ = [
    "ActionAcknowledgeComplaint",
    "ActionAnswerFaq",
    "ActionAnswerFromHelpCenter",
    "ActionArticleFeedback",
    "ActionAskComplaintConfirmed",
    "ActionComplaintHandoff",
    "ActionFallback",
    "ActionGreetCustomer",
    "ActionHandoff",
    "ActionKeepPhoto",
    "ActionListTickets",
    "ActionStopComplaint",
    "ActionSubmitComplaint",
    "ValidateComplaintForm",
]
