"""Content admins edit: intents, examples, responses; the files Rasa trains on."""
