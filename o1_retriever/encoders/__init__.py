"""Encoders turn text into unit-length vectors (sentence-transformers, last-token pooling)."""

from o1_retriever.encoders.base import Encoder, normalize

__all__ = ["Encoder", "normalize", "SentenceTransformerEncoder", "LastTokenEncoder"]


def __getattr__(name: str):  # heavy imports only when used
    if name == "SentenceTransformerEncoder":
        from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder

        return SentenceTransformerEncoder
    if name == "LastTokenEncoder":
        from o1_retriever.encoders.last_token import LastTokenEncoder

        return LastTokenEncoder
    raise AttributeError(name)
