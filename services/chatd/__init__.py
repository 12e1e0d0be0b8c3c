"""chatd (SPEC §6): one chat API over five LLM providers (ollama, openai, anthropic, openrouter,
openai_compatible), with retries, a fallback chain and an OpenAI-compatible surface."""
