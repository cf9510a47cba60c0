"""Zoo entries: the keras-hub text and sequence backbones users export, each from a small
constructor config (2 layers, hidden 16, vocabulary 64, sequences of 8; Moonshine takes
raw audio) with random weights, exported by model.export like zoo_keras's BERT entry and
fed padded batches; plus the greedy generate_step of causal LMs other than GPT-2 and of
a seq2seq LM (BART).

RWKV7's TensorFlow path unrolls its recurrence over the sequence in Python
(``for t in range(T)``) and Qwen3.5's gated delta rule pads the sequence to whole chunks
under a Python ``if``, so neither can be traced with an unknown sequence length and
model.export fails; they are exported here as users must, by an ExportArchive endpoint
whose sequence length is fixed (the batch stays unknown).

Aliases, covered by their entry: Qwen2Backbone is QwenBackbone, SmolLMBackbone is
SmolLM3Backbone, ESM2Backbone is ESMBackbone. Not here, and why (TensorFlow or keras-hub
cannot export or run them, not sm_notebook): none.
"""
from __future__ import annotations

import numpy as np

from make_zoo import Entry, default_feed, keras_made
from zoo_keras import (HUB_SEQUENCE, HUB_VOCABULARY, TRANSFORMER, causal_generate, hub_builder,
                       hub_feed, hub_note, prompt_feed, use_float)

TEXT = {"vocabulary_size": HUB_VOCABULARY, **TRANSFORMER}
HEADS = {"num_heads": 2}
GQA = {"num_query_heads": 2, "num_key_value_heads": 1}
#: Qwen3.5's gated linear-attention (delta rule) layer before a full-attention one
LINEAR_ATTENTION = {"layer_types": ["linear_attention", "full_attention"],
                    "linear_num_key_heads": 2, "linear_num_value_heads": 2,
                    "linear_key_head_dim": 8, "linear_value_head_dim": 8}
ENCODER_DECODER = {f"{side}_{key}": value for side in ("encoder", "decoder") for key, value in {
    "hidden_dim": 16, "intermediate_dim": 32, "num_layers": 2, "num_attention_heads": 2,
    "num_key_value_heads": 1, "head_dim": 8,
    "layer_types": ["sliding_attention", "full_attention"]}.items()}
ENCODER_DECODER["vocabulary_size"] = HUB_VOCABULARY

#: short name, keras_hub.models constructor, config
BACKBONES = [
    ("albert", "AlbertBackbone", dict(TEXT, **HEADS, embedding_dim=8, max_sequence_length=16)),
    ("bart", "BartBackbone", dict(TEXT, **HEADS, max_sequence_length=16)),
    ("bloom", "BloomBackbone", dict(TEXT, **HEADS)),
    ("deberta_v3", "DebertaV3Backbone", dict(TEXT, **HEADS, max_sequence_length=16,
                                              bucket_size=4)),
    ("distil_bert", "DistilBertBackbone", dict(TEXT, **HEADS, max_sequence_length=16)),
    ("electra", "ElectraBackbone", dict({"vocab_size": HUB_VOCABULARY, **TRANSFORMER}, **HEADS,
                                        embedding_dim=8, max_sequence_length=16)),
    ("f_net", "FNetBackbone", dict(TEXT, max_sequence_length=16)),
    ("falcon", "FalconBackbone", dict(TEXT, num_attention_heads=2)),
    ("gemma", "GemmaBackbone", dict(TEXT, **GQA, head_dim=8)),
    ("gemma3", "Gemma3Backbone", dict(TEXT, **GQA, head_dim=8, image_size=16,
                                      vision_encoder=None, sliding_window_size=4)),
    ("gpt_neo_x", "GPTNeoXBackbone", dict(TEXT, **HEADS, max_sequence_length=16)),
    ("llama3", "Llama3Backbone", dict(TEXT, **GQA)),
    ("mistral", "MistralBackbone", dict(TEXT, **GQA, sliding_window=4)),
    ("mixtral", "MixtralBackbone", dict(TEXT, **GQA, num_experts=4, top_k=2, sliding_window=4)),
    ("opt", "OPTBackbone", dict(TEXT, **HEADS, max_sequence_length=16)),
    ("phi3", "Phi3Backbone", dict(TEXT, **GQA, max_sequence_length=16)),
    ("qwen", "QwenBackbone", dict(TEXT, **GQA)),
    ("qwen3", "Qwen3Backbone", dict(TEXT, **GQA, head_dim=8)),
    ("qwen_moe", "QwenMoeBackbone", dict(TEXT, **GQA, moe_intermediate_dim=8,
                                         shared_expert_intermediate_dim=16, num_experts=4,
                                         top_k=2)),
    ("qwen3_moe", "Qwen3MoeBackbone", dict(TEXT, **GQA, head_dim=8, moe_intermediate_dim=8,
                                           num_experts=4, top_k=2)),
    ("roberta", "RobertaBackbone", dict(TEXT, **HEADS, max_sequence_length=16)),
    ("xlm_roberta", "XLMRobertaBackbone", dict(TEXT, **HEADS, max_sequence_length=16)),
    ("xlnet", "XLNetBackbone", dict(TEXT, **HEADS)),
    ("roformer_v2", "RoformerV2Backbone", dict(TEXT, **HEADS, head_size=8)),
    ("esm", "ESMBackbone", dict(TEXT, **HEADS, max_sequence_length=16)),
    ("gpt_oss", "GptOssBackbone", dict(TEXT, **GQA, num_experts=4, top_k=2, head_dim=8,
                                       sliding_window=4)),
    ("smollm3", "SmolLM3Backbone", dict(
        TEXT, num_attention_heads=2, num_key_value_heads=1, attention_bias=False,
        attention_dropout=0.0, rope_layer_enabled_list=[True, False],
        layer_types=["full_attention", "full_attention"], mlp_bias=False,
        layer_norm_epsilon=1e-6, max_position_embeddings=16, rope_theta=10000.0,
        partial_rotary_factor=1.0)),
    ("t5gemma", "T5GemmaBackbone", dict(ENCODER_DECODER, sliding_window=4)),
    ("t5gemma2", "T5Gemma2Backbone", dict(ENCODER_DECODER, sliding_window=4)),
    ("gemma4", "Gemma4Backbone", dict(TEXT, **GQA, head_dim=8, image_size=16,
                                      vision_encoder=None, sliding_window_size=4,
                                      sliding_window_pattern=2)),
    ("gemma3n", "Gemma3nBackbone", dict(
        text_vocab_size=HUB_VOCABULARY, text_hidden_size=16, num_hidden_layers=2,
        pad_token_id=0, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
        intermediate_size=[32, 32], hidden_activation="gelu_approximate",
        layer_types=["sliding_attention", "full_attention"], sliding_window=4,
        rope_theta=10000.0, max_position_embeddings=16, vocab_size_per_layer_input=HUB_VOCABULARY,
        hidden_size_per_layer_input=4, altup_num_inputs=2, laurel_rank=4)),
    ("edrec", "EdRecBackbone", dict(vocab_size=HUB_VOCABULARY, num_layers_enc=2,
                                    num_layers_dec=2, hidden_dim=16, intermediate_dim=32,
                                    num_heads=2)),
]

#: Moonshine (speech to text): raw audio through strided convolutions (kernels 127, 7, 3;
#: strides 64, 3, 2), so the encoder takes AUDIO_SAMPLES samples (7 frames), not 8 tokens
AUDIO_SAMPLES = 2048
AUDIO_BACKBONES = [
    ("moonshine", "MoonshineBackbone", dict(
        vocabulary_size=HUB_VOCABULARY, filter_dim=16, encoder_num_layers=2,
        decoder_num_layers=2, hidden_dim=16, intermediate_dim=32, encoder_num_heads=2,
        decoder_num_heads=2, max_position_embeddings=64)),
]

#: Backbones exported with the sequence length fixed to HUB_SEQUENCE (see the module docstring)
FIXED_SEQUENCE_BACKBONES = [
    ("rwkv7", "RWKV7Backbone", dict(hidden_size=16, head_size=8, num_layers=2,
                                    vocabulary_size=HUB_VOCABULARY, intermediate_dim=32,
                                    gate_lora=8, mv_lora=8, aaa_lora=8, decay_lora=8)),
    ("qwen3_5", "Qwen3_5Backbone", dict(TEXT, **GQA, **LINEAR_ATTENTION, head_dim=8)),
    ("qwen3_5_moe", "Qwen3_5MoeBackbone", dict(
        {"vocabulary_size": HUB_VOCABULARY, "num_layers": 2, "hidden_dim": 16}, **GQA,
        **LINEAR_ATTENTION, head_dim=8, moe_intermediate_dim=8,
        shared_expert_intermediate_size=16, num_experts=4, top_k=2)),
]

#: Entries without a float64 variant, and why (their float outputs get the stated bound)
NO_FLOAT64 = {short: "keras-hub's Qwen3_5GatedDeltaNet casts query, key, value and gates to "
              "float32 (the delta rule runs in float32 whatever the dtype policy), so a float64 "
              "variant cannot be built" for short in ("qwen3_5", "qwen3_5_moe")}

#: short name, backbone constructor, causal LM constructor, backbone config
GENERATORS = [
    ("gemma", "GemmaBackbone", "GemmaCausalLM", dict(TEXT, **GQA, head_dim=8)),
    ("mixtral", "MixtralBackbone", "MixtralCausalLM", dict(TEXT, **GQA, num_experts=4, top_k=2,
                                                           sliding_window=4)),
    ("gemma3", "Gemma3Backbone", "Gemma3CausalLM", dict(TEXT, **GQA, head_dim=8, image_size=16,
                                                        vision_encoder=None,
                                                        sliding_window_size=4)),
    ("falcon", "FalconBackbone", "FalconCausalLM", dict(TEXT, num_attention_heads=2)),
]
SEQ2SEQ_INPUTS = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids",
                  "decoder_padding_mask")
#: short name, backbone constructor, Seq2SeqLM constructor, backbone config
SEQ2SEQ_GENERATORS = [
    ("bart", "BartBackbone", "BartSeq2SeqLM", dict(TEXT, **HEADS, max_sequence_length=16)),
]


def padding_mask(rng, batch, length, dtype):
    """[batch, length]: each row keeps a random half to all of its leading positions."""
    kept = rng.integers(length // 2, length + 1, size=batch)
    return (np.arange(length)[None, :] < kept[:, None]).astype(dtype)


def padded_feed(signature, key, shape, dtype, rng, batch):
    """hub_feed, but padding masks keep a random 4 to 8 leading tokens per row (masked
    attention, as padded batches run)."""
    if "padding_mask" in key:
        return padding_mask(rng, batch, HUB_SEQUENCE, dtype)
    return hub_feed(signature, key, shape, dtype, rng, batch)


def audio_feed(signature, key, shape, dtype, rng, batch):
    """AUDIO_SAMPLES encoder samples (standard normal) whose padding masks keep a random
    half to all of them; decoder inputs as padded_feed."""
    if not key.startswith("encoder_"):
        return padded_feed(signature, key, shape, dtype, rng, batch)
    if "padding_mask" in key:
        return padding_mask(rng, batch, AUDIO_SAMPLES, dtype)
    return default_feed([batch, AUDIO_SAMPLES, *shape[2:]], np.dtype(dtype), rng)


def seq2seq_prompt_feed(signature, key, shape, dtype, rng, batch):
    """Padded encoder inputs (padded_feed) and 3-token decoder prompts (prompt_feed)."""
    if key.startswith("encoder_"):
        return padded_feed(signature, key, shape, dtype, rng, batch)
    return prompt_feed(signature, key.removeprefix("decoder_"), shape, dtype, rng, batch)


def fixed_sequence_builder(constructor, **config):
    """``constructor(**config)`` exported as "serving_default" taking its inputs as
    [batch, HUB_SEQUENCE] tensors by name."""
    def build(dtype):
        import keras_hub
        import tensorflow as tf
        use_float(dtype)
        backbone = getattr(keras_hub.models, constructor)(dtype=dtype, **config)
        names = [tensor.name for tensor in backbone.inputs]
        specs = [tf.TensorSpec([None, HUB_SEQUENCE], tensor.dtype, name=tensor.name)
                 for tensor in backbone.inputs]

        def serve(*inputs):
            return backbone(dict(zip(names, inputs)), training=False)
        return keras_made(backbone, {"serving_default": (serve, specs)})
    return build


ENTRIES = [Entry(f"keras_hub_{short}", f"keras-hub/{short}", "keras-hub", hub_note(name, config),
                 hub_builder(name, **config), feeds=padded_feed)
           for short, name, config in BACKBONES]
ENTRIES += [Entry(f"keras_hub_{short}", f"keras-hub/{short}", "keras-hub",
                  f"{hub_note(name, config)}, {AUDIO_SAMPLES} audio samples",
                  hub_builder(name, **config), feeds=audio_feed)
            for short, name, config in AUDIO_BACKBONES]
ENTRIES += [Entry(f"keras_hub_{short}", f"keras-hub/{short}", "keras-hub",
                  f"{hub_note(name, config)}, exported with sequences fixed to {HUB_SEQUENCE}",
                  fixed_sequence_builder(name, **config), feeds=padded_feed,
                  ref64=short not in NO_FLOAT64, no_ref64_because=NO_FLOAT64.get(short, ""))
            for short, name, config in FIXED_SEQUENCE_BACKBONES]
ENTRIES += [Entry(f"keras_hub_{short}_generate", f"keras-hub/{short}", "keras-hub",
                  f"{causal} greedy generate_step (KV cache, while loop): 3-token prompts "
                  "grown to 8; token ids compared exactly",
                  causal_generate(backbone, causal, **config), feeds=prompt_feed)
            for short, backbone, causal, config in GENERATORS]
ENTRIES += [Entry(f"keras_hub_{short}_generate", f"keras-hub/{short}", "keras-hub",
                  f"{task} greedy generate_step (encoder once, cached decoder in a while loop): "
                  "padded encoder inputs, 3-token decoder prompts grown to 8; token ids "
                  "compared exactly", causal_generate(backbone, task, SEQ2SEQ_INPUTS, **config),
                  feeds=seq2seq_prompt_feed)
            for short, backbone, task, config in SEQ2SEQ_GENERATORS]
