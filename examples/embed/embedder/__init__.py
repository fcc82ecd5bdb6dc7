"""Sentence embeddings, written as a package."""

from vastai.serverless.remote import Deployment

app = Deployment(name="embeddings")

from . import model  # noqa: E402,F401  (registers the remote functions)
