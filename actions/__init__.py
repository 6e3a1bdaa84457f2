"""Custom Rasa actions, served by rasa_sdk (`python -m rasa_sdk --actions actions`)."""

from actions.complaints import (
    ActionAskComplaintConfirmed,
    ActionComplaintHandoff,
    ActionStopComplaint,
    ValidateComplaintForm,
)
from actions.greeting import ActionGreetCustomer
from actions.tickets import ActionListTickets, ActionSubmitComplaint

__all__ = [
    "ActionAskComplaintConfirmed",
    "ActionComplaintHandoff",
    "ActionGreetCustomer",
    "ActionListTickets",
    "ActionStopComplaint",
    "ActionSubmitComplaint",
    "ValidateComplaintForm",
]
