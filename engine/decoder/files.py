"""Decoder weights in a model folder: `decoder.safetensors` plus a 'decoder' section in the folder's record."""
from __future__ import annotations

from pathlib import Path

from engine.decoder.model import ConditionalDecoder, DecoderConfig
from engine.errors import SiteError, StoreError
from engine.probed.model import ProbedModel
from engine.probed.sites import Site, get_site
from engine.store.folders import ModelEntry, check_state, no_decoder_message, read_config, record_path, write_config
from engine.store.safefiles import check_shapes, checked_weights, load_tensors, save_tensors, tensor_shapes


def save_decoder(folder: Path, decoder: ConditionalDecoder, site_ids: list[str], training: dict) -> None:
    folder = Path(folder)
    save_tensors(folder / "decoder.safetensors", decoder.state_dict())
    config = read_config(folder)
    config["decoder"] = {"config": decoder.cfg.to_dict(), "sites": list(site_ids), "training": training}
    write_config(folder, config)


def load_decoder(entry: ModelEntry, probed: ProbedModel) -> tuple[ConditionalDecoder, list[Site]]:
    """The folder's decoder, checked against its probed model."""
    path = entry.path / "decoder.safetensors"
    if not entry.decoder:
        raise StoreError(f"{record_path(entry.path)}: {no_decoder_message(entry)}")
    try:
        dcfg = DecoderConfig.from_dict(entry.decoder["config"])
        sites = [get_site(probed.config, s) for s in entry.decoder["sites"]]
    except (KeyError, TypeError, ValueError, SiteError) as e:
        raise StoreError(f"{record_path(entry.path)}: bad 'decoder' section ({e})") from None
    pc, task = probed.config, probed.task
    # a text model's decoder may be shorter than the model's context; a task decoder writes whole grids
    n_ctx = dcfg.n_ctx if task.is_text and dcfg.n_ctx <= pc.n_ctx else pc.n_ctx
    expected = (pc.d_model, task.decoder_vocab_size, n_ctx, len(sites))
    found = (dcfg.d_act, dcfg.d_vocab, dcfg.n_ctx, dcfg.n_sites)
    if expected != found:
        raise StoreError(f"{path}: the decoder does not match the model (d_act, vocab, n_ctx, sites = {found}; "
                         f"the probed model needs {expected})")
    shapes = tensor_shapes(path)  # the header only: a damaged file is named before the decoder is built
    decoder = ConditionalDecoder(dcfg).to(probed.device)
    # an extra or oversized tensor is refused before any tensor is read
    check_shapes(path, {k: tuple(v.shape) for k, v in decoder.state_dict().items()}, shapes)
    tensors, _ = load_tensors(path, device=probed.device)
    tensors = checked_weights(path, tensors)
    check_state(path, decoder.state_dict(), tensors)
    decoder.load_state_dict(tensors)
    decoder.eval()
    return decoder, sites
