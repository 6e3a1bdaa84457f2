"""The sentence encoders (MiniLM-L6, MPNet), shared by the app (Python 3.11) and Rasa's side (3.10).

No Rasa, no deep-learning framework: `encoder.sentence_encoder` (the forward pass in numpy, or in onnxruntime by
`encoder.onnx_forward`, and fetching MiniLM's weights), `encoder.wordpiece` (the tokenizer), `encoder.mpnet` and
`encoder.mpnet_wheel` (all-mpnet-base-v2) and `encoder.cache` (embeddings kept on disk between trainings)."""
