"""Frontline's understanding: Rasa training data, entity rules and the spaCy pipeline builder."""
