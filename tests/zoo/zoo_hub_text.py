"""Zoo entries: the keras-hub text and sequence backbones users export, each from a small
constructor config (2 layers, hidden 16, vocabulary 64, sequences of 8) with random
weights, exported by model.export like zoo_keras's BERT entry, plus causal-LM greedy
generation of architectures other than GPT-2.

Not here, and why (TensorFlow or keras-hub cannot export or run them, not sm_notebook):
(none so far)
"""
from __future__ import annotations

from make_zoo import Entry
from zoo_keras import HUB_VOCABULARY, TRANSFORMER, causal_generate, hub_builder, hub_feed, prompt_feed

TEXT = {"vocabulary_size": HUB_VOCABULARY, **TRANSFORMER}
HEADS = {"num_heads": 2}
GQA = {"num_query_heads": 2, "num_key_value_heads": 1}

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
    ("t5gemma", "T5GemmaBackbone", dict(
        vocabulary_size=HUB_VOCABULARY, encoder_hidden_dim=16, encoder_intermediate_dim=32,
        encoder_num_layers=2, encoder_num_attention_heads=2, encoder_num_key_value_heads=1,
        encoder_head_dim=8, encoder_layer_types=["sliding_attention", "full_attention"],
        decoder_hidden_dim=16, decoder_intermediate_dim=32, decoder_num_layers=2,
        decoder_num_attention_heads=2, decoder_num_key_value_heads=1, decoder_head_dim=8,
        decoder_layer_types=["sliding_attention", "full_attention"], sliding_window=4)),
    ("rwkv7", "RWKV7Backbone", dict(hidden_size=16, head_size=8, num_layers=2,
                                    vocabulary_size=HUB_VOCABULARY, intermediate_dim=32,
                                    gate_lora=8, mv_lora=8, aaa_lora=8, decay_lora=8)),
]

#: short name, backbone constructor, causal LM constructor, backbone config
GENERATORS = [
    ("gemma", "GemmaBackbone", "GemmaCausalLM", dict(TEXT, **GQA, head_dim=8)),
]


def describe(name, config) -> str:
    return f"keras_hub.models.{name}({', '.join(f'{k}={v}' for k, v in config.items())})"


ENTRIES = [Entry(f"keras_hub_{short}", f"keras-hub/{short}", "keras-hub", describe(name, config),
                 hub_builder(name, **config), feeds=hub_feed)
           for short, name, config in BACKBONES]
ENTRIES += [Entry(f"keras_hub_{short}_generate", f"keras-hub/{short}", "keras-hub",
                  f"{causal} greedy generate_step (KV cache, while loop): 3-token prompts "
                  "grown to 8; token ids compared exactly",
                  causal_generate(backbone, causal, **config), feeds=prompt_feed)
            for short, backbone, causal, config in GENERATORS]
