"""The MiniLM sentence encoder in plain numpy, shared by the app (Python 3.11) and Rasa's side (3.10).

No Rasa, no deep-learning framework: `encoder.sentence_encoder` (the tokenizer, the forward pass and fetching the
weights) and `encoder.cache` (embeddings kept on disk between trainings)."""
