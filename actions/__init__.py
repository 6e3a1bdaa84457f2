"""Custom Rasa actions, served by rasa_sdk (`python -m rasa_sdk --actions actions`)."""

from actions.greeting import ActionGreetCustomer

__all__ = ["ActionGreetCustomer"]
