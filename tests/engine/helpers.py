"""Shared test helpers: small probed models and decoders built in seconds, and the CLI runner."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python main.py ARGS` in a fresh process, as a user would."""
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def make_model_folder(folder: Path, task: str, decoder_steps: int | None = None, seed: int = 0) -> Path:
    """A model folder with a randomly initialised probed model and, optionally, a briefly trained decoder."""
    import numpy as np
    import torch

    from engine.decoder.files import save_decoder
    from engine.decoder.loss import sequence_loss
    from engine.decoder.pairs import make_pairs
    from engine.decoder.train import DecoderTrainConfig, new_decoder
    from engine.probed.model import PAPER_CONFIGS, build_probed
    from engine.probed.sites import paper_sites
    from engine.store.folders import save_probed

    probed = build_probed(PAPER_CONFIGS[task], seed=seed)
    save_probed(probed, folder, name=folder.name)
    if decoder_steps is not None:
        sites = paper_sites(probed.config)
        cfg = DecoderTrainConfig(minutes=1, d_model=32, n_layers=1, n_heads=2)
        decoder = new_decoder(probed, cfg, sites)
        opt = torch.optim.AdamW(decoder.parameters(), lr=3e-3)
        rng = np.random.default_rng(seed)
        train = probed.task.split(0).train
        for _ in range(decoder_steps):
            batch = make_pairs(probed, sites, train[rng.integers(0, len(train), 64)], rng)
            loss = sequence_loss(decoder, batch, probed.task.pad_id)
            opt.zero_grad()
            loss.backward()
            opt.step()
        decoder.eval()
        save_decoder(folder, decoder, [s.id for s in sites], {"command": "tests"})
    return folder


TEXT_CORPUS = ["When Mary and John went to the store, John gave a drink to Mary.",
               "The quick brown fox jumps over the lazy dog.\nThen it slept.",
               "Friends, Romans, countrymen, lend me your ears."] * 20


def train_tokenizer(vocab_size: int = 300):
    """A byte-level BPE tokenizer (GPT-2's kind) trained here on a few sentences."""
    from engine.text.hf_tokenizer import train_byte_level_bpe

    return train_byte_level_bpe(TEXT_CORPUS, vocab_size)


def make_text_folder(folder: Path, family: str = "gpt2", n_layers: int = 2, n_heads: int = 4, d_model: int = 64,
                     n_ctx: int = 64, weights: str = "safetensors", tokenizer: str = "json", seed: int = 0,
                     tok=None) -> Path:
    """A Hugging Face text-model folder as `save_pretrained` writes it: random weights, a config
    of `family` ("gpt2", or "llama": RMSNorm, rotary positions, grouped-query attention), and a
    tokenizer trained on the spot (tokenizer.json, or GPT-2's vocab.json + merges.txt)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tok = tok or train_tokenizer()
    vocab = tok.get_vocab_size()
    bos = tok.token_to_id("<|endoftext|>")
    torch.manual_seed(seed)
    if family == "gpt2":
        config = GPT2Config(vocab_size=vocab, n_positions=n_ctx, n_embd=d_model, n_layer=n_layers, n_head=n_heads,
                            bos_token_id=bos, eos_token_id=bos)
        model = GPT2LMHeadModel(config)
    elif family == "neox":  # GPT-NeoX / Pythia: parallel attention and MLP, partial rotary positions
        from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

        config = GPTNeoXConfig(vocab_size=vocab, hidden_size=d_model, num_hidden_layers=n_layers,
                               num_attention_heads=n_heads, intermediate_size=4 * d_model,
                               max_position_embeddings=n_ctx, rotary_pct=0.25, use_parallel_residual=True,
                               bos_token_id=bos, eos_token_id=bos, tie_word_embeddings=False)
        model = GPTNeoXForCausalLM(config)
    elif family == "llama":
        config = LlamaConfig(vocab_size=vocab, hidden_size=d_model, intermediate_size=2 * d_model,
                             num_hidden_layers=n_layers, num_attention_heads=n_heads,
                             num_key_value_heads=max(1, n_heads // 2), max_position_embeddings=n_ctx,
                             bos_token_id=bos, eos_token_id=bos, tie_word_embeddings=False)
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(family)
    folder.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(str(folder), safe_serialization=weights == "safetensors")
    if tokenizer == "json":
        tok.save(str(folder / "tokenizer.json"))
    else:
        tok.model.save(str(folder))  # vocab.json and merges.txt
    return folder
