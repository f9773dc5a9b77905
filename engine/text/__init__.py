"""Text <-> token ids: the `Tokenizer` protocol every task and model folder fills, and the
character tokenizer of the synthetic tasks.

Owns: encoding, decoding, token strings for display and special ids. Imports nothing else of
the engine. Code outside this room and `engine/tasks/` never assumes one character per token:
it asks the tokenizer for token strings (`token_strings`, `strings`) and ids (`token_id`).
"""
from engine.text.characters import CharTokenizer
from engine.text.tokenizer import Tokenizer, TokenizerInputError

__all__ = ["CharTokenizer", "Tokenizer", "TokenizerInputError"]
