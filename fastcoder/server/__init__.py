"""OpenAI-compatible HTTP server: `create_app(engine, tokenizer, model_name, api_key)`."""
