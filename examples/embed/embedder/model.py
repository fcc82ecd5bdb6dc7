from . import app


@app.remote
async def embed(texts: list[str]) -> list[list[float]]:
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer("all-MiniLM-L6-v2")
    return encoder.encode(texts).tolist()
