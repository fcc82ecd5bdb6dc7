"""A vLLM-style chat completion server."""

import os

from vastai.serverless.remote import Deployment

app = Deployment(name="qwen-chat", tag="default")
MODEL = os.environ.get("MODEL_NAME", "Qwen/Qwen3-0.6B")
engine = None  # !VAST_IGNORE_CHANGES


@app.remote
async def generate(prompt: str, max_tokens: int = 256) -> str:
    global engine
    if engine is None:
        from vllm import LLM

        engine = LLM(model=MODEL)
    outputs = engine.generate([prompt])
    return outputs[0].outputs[0].text[:max_tokens]
