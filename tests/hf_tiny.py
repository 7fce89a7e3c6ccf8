"""Tiny random-weight Hugging Face models, one per family, saved with ``save_pretrained`` (no hub access).

``save(family, folder)`` writes the folder; ``FAMILIES`` lists them. Sizes are the smallest that keep
each architecture's shape constraints (heads divide the hidden size, wav2vec2's convolutions see enough
samples, Whisper's 2 x max_source_positions frames)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEXT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def _configs() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """family -> (config class, model class, config kwargs)."""
    return {
        "bert": ("BertConfig", "BertModel", dict(TEXT, max_position_embeddings=64)),
        "distilbert": ("DistilBertConfig", "DistilBertForSequenceClassification",
                       dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64)),
        "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64)),
        "llama": ("LlamaConfig", "LlamaForCausalLM",
                  dict(TEXT, num_key_value_heads=2, max_position_embeddings=64)),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(TEXT, num_key_value_heads=2, max_position_embeddings=64)),
        "t5-encoder": ("T5Config", "T5EncoderModel",
                       dict(vocab_size=99, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)),
        "t5": ("T5Config", "T5ForConditionalGeneration",
               dict(vocab_size=99, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, decoder_start_token_id=0)),
        "bart": ("BartConfig", "BartForConditionalGeneration",
                 dict(vocab_size=99, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                      decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64)),
        "clip": ("CLIPConfig", "CLIPModel",
                 dict(text_config=dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=37, max_position_embeddings=32),
                      vision_config=dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=4, intermediate_size=37),
                      projection_dim=16)),
        "vit": ("ViTConfig", "ViTForImageClassification",
                dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, num_labels=5)),
        "convnext": ("ConvNextConfig", "ConvNextForImageClassification",
                     dict(image_size=32, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=5)),
        # DETR with a transformers ResNet backbone (use_timm_backbone=False: no timm, no pretrained download)
        "detr": ("DetrConfig", "DetrForObjectDetection",
                 dict(use_timm_backbone=False, use_pretrained_backbone=False, backbone=None,
                      backbone_config=dict(model_type="resnet", embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                           layer_type="basic", out_features=["stage2"]),
                      d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                      decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, num_queries=5, num_labels=3)),
        "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2ForCTC",
                     dict(vocab_size=20, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=37, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, do_stable_layer_norm=True,
                          feat_extract_norm="layer")),
        "whisper": ("WhisperConfig", "WhisperForConditionalGeneration",
                    dict(vocab_size=99, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                         decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, num_mel_bins=8,
                         max_source_positions=16, max_target_positions=32, decoder_start_token_id=1,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2, suppress_tokens=None,
                         begin_suppress_tokens=None)),
    }


FAMILIES = tuple(_configs())

#: family -> (image processor class, kwargs): saved into the folder, so the workbench makes its example
#: images with the model's own preprocessing (resize, crop, rescale, normalise) as a user's folder would
PROCESSORS: dict[str, tuple[str, dict[str, Any]]] = {
    "vit": ("ViTImageProcessor", dict(size={"height": 32, "width": 32})),
    "convnext": ("ConvNextImageProcessor", dict(size={"shortest_edge": 32}, crop_pct=0.875)),
    "detr": ("DetrImageProcessor", dict(size={"shortest_edge": 64, "longest_edge": 64})),
}


def save(family: str, folder: Path) -> Path:
    """Write a tiny random-weight ``family`` model (seeded) to ``folder`` and return the folder."""
    import torch
    import transformers

    config_cls, model_cls, kwargs = _configs()[family]
    config = getattr(transformers, config_cls)(**kwargs)
    torch.manual_seed(0)
    model = getattr(transformers, model_cls)(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    if family in PROCESSORS:
        processor_cls, processor_kwargs = PROCESSORS[family]
        getattr(transformers, processor_cls)(**processor_kwargs).save_pretrained(str(folder))
    return folder
