"""Custom Rasa graph components; imported only inside .venv-rasa."""
