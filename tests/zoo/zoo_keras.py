"""Zoo entries made by Keras 3 (applications, keras-hub, mixed precision, preprocessing) and
tf_keras (Keras 2). Each builder takes the float dtype ("float32", or "float64" for the
reference variant) and returns a make_zoo.Made; make_zoo.reset_state() has set floatx
and the dtype policy to float32 and fixed the seeds before it runs."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from make_zoo import WORDS, Entry, default_feed, keras_made, module_made


def use_float(dtype):
    """Keras 3 (and tf_keras, when loaded) build layers and inputs in ``dtype``."""
    import keras
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    if "tf_keras" in sys.modules:
        sys.modules["tf_keras"].backend.set_floatx(dtype)


# ---------------------------------------------------------------------------
# keras.applications: every family, random weights, the smallest input each allows
# ---------------------------------------------------------------------------

#: constructor name, image side (the minimum the application accepts), extra arguments
APPLICATIONS = [
    ("ResNet50", 32, {}),
    ("ResNet50V2", 32, {}),
    ("EfficientNetB0", 32, {}),
    ("EfficientNetV2B0", 32, {}),
    ("DenseNet121", 32, {}),
    ("MobileNet", 32, {"alpha": 0.25}),
    ("MobileNetV2", 32, {"alpha": 0.35}),
    ("MobileNetV3Small", 32, {"alpha": 0.75}),
    ("ConvNeXtTiny", 32, {}),
    ("NASNetMobile", 32, {}),
    ("Xception", 71, {}),
    ("InceptionV3", 75, {}),
    ("VGG16", 32, {"include_top": False, "pooling": "avg"}),
]
#: Families Keras 3 dropped; tf_keras (Keras 2) still has them.
TF_KERAS_APPLICATIONS = [("RegNetX002", 32, {})]


def perturb_batch_norm(model, seed=7):
    """Give BatchNormalization non-trivial statistics (random init leaves mean 0, variance 1);
    gamma or beta may be absent (scale=False, center=False)."""
    rng = np.random.default_rng(seed)
    layers = model._flatten_layers(include_self=False) if hasattr(model, "_flatten_layers") \
        else model.layers  # nested models (a backbone's image encoder) too
    draws = {"gamma": lambda n: 1 + 0.1 * rng.standard_normal(n),
             "beta": lambda n: 0.1 * rng.standard_normal(n),
             "moving_mean": lambda n: 0.1 * rng.standard_normal(n),
             "moving_variance": lambda n: 1 + 0.2 * rng.random(n)}
    for layer in layers:
        if type(layer).__name__ == "BatchNormalization":
            for attribute, draw in draws.items():
                variable = getattr(layer, attribute, None)
                if variable is not None:
                    value = draw(tuple(variable.shape))
                    variable.assign(value.astype(np.dtype(getattr(variable.dtype, "name", variable.dtype))))


def application_builder(constructor, side, extra):
    def build(dtype):
        import keras
        use_float(dtype)
        arguments = {"weights": None, "input_shape": (side, side, 3), "classes": 10, **extra}
        if arguments.get("include_top", True) is False:
            arguments.pop("classes")
        model = getattr(keras.applications, constructor)(**arguments)
        perturb_batch_norm(model)
        return keras_made(model)
    return build


def tf_keras_application_builder(constructor, side, extra):
    def build(dtype):
        import tensorflow as tf
        import tf_keras
        use_float(dtype)
        model = getattr(tf_keras.applications, constructor)(
            weights=None, input_shape=(side, side, 3), classes=10, **extra)
        perturb_batch_norm(model)
        return tf_keras_serving(model, tf.TensorSpec([None, side, side, 3], dtype, name="images"))
    return build


def application_entries():
    entries = []
    for library, producer, applications, builder in (
            ("keras", "keras", APPLICATIONS, application_builder),
            ("tf_keras", "tf_keras", TF_KERAS_APPLICATIONS, tf_keras_application_builder)):
        entries += [Entry(f"{library.replace('_', '')}_app_{name.lower()}",
                          f"keras.applications/{family(name)}", producer,
                          f"{library}.applications.{name}(weights=None), {side}x{side}x3 input"
                          + (f", {extra}" if extra else ""), builder(name, side, extra))
                    for name, side, extra in applications]
    return entries


def family(name):
    for prefix in ("EfficientNetV2", "EfficientNet", "ResNet", "DenseNet", "MobileNet",
                   "ConvNeXt", "NASNet", "Xception", "Inception", "RegNet", "VGG"):
        if name.startswith(prefix):
            return prefix
    return name


# ---------------------------------------------------------------------------
# keras-hub backbones from small constructor configs
# ---------------------------------------------------------------------------

HUB_VOCABULARY = 64
HUB_SEQUENCE = 8
TRANSFORMER = {"num_layers": 2, "hidden_dim": 16, "intermediate_dim": 32}


def hub_feed(signature, key, shape, dtype, rng, batch):
    """Token ids below the vocabulary, all-true padding masks, segment ids 0/1, sequences of 8."""
    concrete = [batch if i == 0 else HUB_SEQUENCE if d is None else d for i, d in enumerate(shape)]
    if "padding_mask" in key:
        return np.ones(concrete, dtype)
    if "segment_ids" in key:
        return rng.integers(0, 2, size=concrete).astype(dtype)
    if "token_ids" in key:
        return rng.integers(0, HUB_VOCABULARY, size=concrete).astype(dtype)
    return default_feed(concrete, np.dtype(dtype), rng)


@dataclass(frozen=True)
class HubPart:
    """A keras-hub model or layer built inside the builder (an image encoder, a prompt
    encoder) to be passed to another's constructor: keras_hub.models.<constructor>, else
    keras_hub.layers.<constructor>, called with ``args`` and ``config``."""
    constructor: str
    args: tuple = ()
    config: dict = field(default_factory=dict)


def hub_model(constructor, dtype, args=(), config=None):
    """keras_hub.models.<constructor> (or .layers) in ``dtype``, HubPart arguments built first."""
    import keras_hub

    def resolve(value):
        return hub_model(value.constructor, dtype, value.args, value.config) \
            if isinstance(value, HubPart) else value
    maker = getattr(keras_hub.models, constructor, None) or getattr(keras_hub.layers, constructor)
    return maker(*map(resolve, args), dtype=dtype,
                 **{k: resolve(v) for k, v in (config or {}).items()})


def hub_builder(constructor, **config):
    """keras_hub.models.<constructor>(dtype=..., **config) with perturbed batch norms."""
    def build(dtype):
        use_float(dtype)
        model = hub_model(constructor, dtype, config=config)
        perturb_batch_norm(model)
        return keras_made(model)
    return build


def hub_note(constructor, config) -> str:
    """An entry's note: the keras_hub.models call that builds it (a nested part as Name(...))."""
    def text(value):
        return f"{value.constructor}(...)" if isinstance(value, HubPart) else str(value)
    return f"keras_hub.models.{constructor}({', '.join(f'{k}={text(v)}' for k, v in config.items())})"


def causal_generate(backbone_name, task_name, inputs=("token_ids", "padding_mask"), **config):
    """A keras_hub CausalLM's (or Seq2SeqLM's) own greedy generate_step (cached decoding in
    a while loop) as the endpoint, over ``backbone_name(**config)``; ``inputs`` names its
    [batch, HUB_SEQUENCE] token ids (int32) and padding masks (bool)."""
    def build(dtype):
        import keras_hub
        import tensorflow as tf
        use_float(dtype)
        backbone = getattr(keras_hub.models, backbone_name)(dtype=dtype, **config)
        task = getattr(keras_hub.models, task_name)(backbone=backbone, preprocessor=None)
        task.compile(sampler="greedy")

        def generate(*values):  # outputs without a value (Gemma3's "images": None) dropped
            outputs = task.generate_step(dict(zip(inputs, values)), stop_token_ids=None)
            return {key: value for key, value in outputs.items() if value is not None}
        specs = [tf.TensorSpec([None, HUB_SEQUENCE], tf.bool if "padding_mask" in name else tf.int32,
                               name=name) for name in inputs]
        return keras_made(task, {"serving_default": (generate, specs)})
    return build


def prompt_feed(signature, key, shape, dtype, rng, batch):
    """Prompts of 3 tokens in 8 positions: the loop generates the other 5."""
    if key == "padding_mask":
        return np.arange(HUB_SEQUENCE)[None, :].repeat(batch, 0) < 3
    return rng.integers(1, HUB_VOCABULARY, size=(batch, HUB_SEQUENCE)).astype(dtype)


def hub_entries():
    text = {"vocabulary_size": HUB_VOCABULARY, **TRANSFORMER}
    image = {"image_shape": (32, 32, 3), "patch_size": 8, "num_layers": 2, "num_heads": 2,
             "hidden_dim": 16}
    specs = [
        ("bert", "BertBackbone", dict(text, num_heads=2, max_sequence_length=16)),
        ("gpt2", "GPT2Backbone", dict(text, num_heads=2, max_sequence_length=16)),
        ("llama", "LlamaBackbone", dict(text, num_query_heads=2, num_key_value_heads=1)),
        ("vit", "ViTBackbone", dict(image, mlp_dim=32)),
        ("deit", "DeiTBackbone", dict(image, intermediate_dim=32)),
        ("t5", "T5Backbone", dict(text, num_heads=2)),
        ("whisper", "WhisperBackbone", dict(text, num_heads=2, num_mels=8,
                                            max_encoder_sequence_length=16,
                                            max_decoder_sequence_length=16)),
    ]
    entries = [Entry(f"keras_hub_{short}", f"keras-hub/{short}", "keras-hub",
                     hub_note(name, config), hub_builder(name, **config), feeds=hub_feed)
               for short, name, config in specs]
    entries.append(Entry("keras_hub_gpt2_generate", "keras-hub/gpt2", "keras-hub",
                         "GPT2CausalLM greedy generate_step (KV cache, while loop): 3-token "
                         "prompts grown to 8; token ids compared exactly",
                         causal_generate("GPT2Backbone", "GPT2CausalLM", **dict(
                             text, num_heads=2, max_sequence_length=32)),
                         feeds=prompt_feed))
    return entries


# ---------------------------------------------------------------------------
# Keras mixed_float16 (the float64 variant runs the same layers wholly in float64)
# ---------------------------------------------------------------------------

def mixed_policy(dtype):
    """mixed_float16 for the float32 build, float64 for the reference; returns the head dtype."""
    import keras
    use_float(dtype)
    if dtype == "float32":
        keras.config.set_dtype_policy("mixed_float16")
    return dtype


def mixed_cnn(dtype):
    import keras
    head = mixed_policy(dtype)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(10)(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax", dtype=head)(x))
    perturb_batch_norm(model)
    return keras_made(model)


def mixed_transformer(dtype):
    import keras
    head = mixed_policy(dtype)
    inputs = keras.Input((6, 16))
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(inputs, inputs)
    x = keras.layers.LayerNormalization()(inputs + attended)
    x = keras.layers.Dense(32, activation="gelu")(x)
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(16)(x))
    return keras_made(keras.Model(inputs, keras.layers.Dense(4, dtype=head)(x)))


def mixed_entries():
    note = " under keras.mixed_precision policy mixed_float16 (float32 head); the float64 " \
           "reference runs the same layers in float64, so the bound holds float16's error"
    return [Entry("keras_mixed_cnn", "keras/mixed_float16", "keras",
                  "Conv2D, BatchNorm, DepthwiseConv2D, Dense" + note, mixed_cnn),
            Entry("keras_mixed_transformer", "keras/mixed_float16", "keras",
                  "MultiHeadAttention, LayerNorm, gelu Dense" + note, mixed_transformer)]


# ---------------------------------------------------------------------------
# Keras 3 preprocessing layers inside the serving function
# ---------------------------------------------------------------------------

VOCABULARY = ["the", "cat", "sat", "on", "mat", "dog"]


def sentence_feed(signature, key, shape, dtype, rng, batch):
    """Sentences of 0-6 words from WORDS for a rank-1 string input, single words for a
    higher rank; integers 0-11 for integer ones."""
    if dtype != object:
        if np.issubdtype(dtype, np.integer):
            return rng.integers(0, 12, size=[batch, *shape[1:]]).astype(dtype)
        return None
    if len(shape) > 1:
        return None
    words = [" ".join(WORDS[i] for i in rng.integers(len(WORDS), size=rng.integers(0, 7)))
             for _ in range(batch)]
    return np.array([w.encode() for w in words], dtype=object).reshape([batch, *shape[1:]])


def preprocessing_builder(make_layer, input_shape, input_dtype, dense_head=False):
    """Input -> preprocessing layer (-> Dense when ``dense_head``), as a Keras 3 model."""
    def build(dtype):
        import keras
        use_float(dtype)
        inputs = keras.Input(input_shape, dtype=input_dtype)
        x = make_layer(keras, dtype)(inputs)
        if dense_head:
            x = keras.layers.Dense(3)(keras.ops.cast(x, dtype))
        return keras_made(keras.Model(inputs, x))
    return build


def text_vectorization(**arguments):
    def make(keras, dtype):
        extra = {}
        if arguments.get("output_mode") == "tf_idf":
            extra["idf_weights"] = np.linspace(0.5, 2.0, len(VOCABULARY))
        return keras.layers.TextVectorization(vocabulary=VOCABULARY, **arguments, **extra)
    return make


def preprocessing_entries():
    modes = [("int", {"output_mode": "int", "output_sequence_length": 5}),
             ("multi_hot", {"output_mode": "multi_hot"}),
             ("count", {"output_mode": "count"}),
             ("tf_idf", {"output_mode": "tf_idf"}),
             ("int_bigrams", {"output_mode": "int", "ngrams": 2, "output_sequence_length": 8}),
             ("multi_hot_bigrams", {"output_mode": "multi_hot", "ngrams": (1, 2)})]
    entries = [Entry(f"keras_textvec_{mode}", "keras/preprocessing", "keras",
                     f"keras.layers.TextVectorization({arguments}) on sentences",
                     preprocessing_builder(text_vectorization(**arguments), (), "string"),
                     feeds=sentence_feed)
               for mode, arguments in modes]
    layers = [
        ("string_lookup", (2,), "string", lambda k, d: k.layers.StringLookup(vocabulary=VOCABULARY)),
        ("string_lookup_one_hot", (2,), "string",
         lambda k, d: k.layers.StringLookup(vocabulary=VOCABULARY, output_mode="one_hot")),
        ("integer_lookup", (2,), "int64",
         lambda k, d: k.layers.IntegerLookup(vocabulary=np.array([1, 3, 5, 7], np.int64))),
        ("hashing", (2,), "string", lambda k, d: k.layers.Hashing(num_bins=7)),
        ("hashing_salted", (2,), "int64", lambda k, d: k.layers.Hashing(num_bins=5, salt=13)),
        ("discretization", (4,), "float32",
         lambda k, d: k.layers.Discretization(bin_boundaries=[-1.0, -0.25, 0.0, 0.5, 1.5])),
        ("normalization", (4,), "float32",
         lambda k, d: k.layers.Normalization(mean=[0.5, -1.0, 2.0, 0.0],
                                             variance=[1.0, 4.0, 0.25, 2.0])),
        ("category_encoding", (3,), "int64",
         lambda k, d: k.layers.CategoryEncoding(num_tokens=12, output_mode="multi_hot")),
        ("category_encoding_count", (3,), "int64",
         lambda k, d: k.layers.CategoryEncoding(num_tokens=12, output_mode="count")),
    ]
    for name, shape, input_dtype, make in layers:
        entries.append(Entry(
            f"keras_{name}", "keras/preprocessing", "keras",
            f"keras.layers preprocessing ({name}) in the serving function, then a Dense head",
            preprocessing_builder(make, shape, input_dtype, dense_head=True),
            feeds=sentence_feed))
    return entries


# ---------------------------------------------------------------------------
# tf_keras (Keras 2)
# ---------------------------------------------------------------------------

def tf_keras_serving(model, spec, track_owner=False):
    import tensorflow as tf

    @tf.function(input_signature=[spec])
    def serve(x):
        return {"output": model(x, training=False)}
    return module_made(model, {"serving_default": serve}, track_owner)


def tfkeras_bidirectional_rnn(dtype):
    import tensorflow as tf
    import tf_keras
    use_float(dtype)
    layers = tf_keras.layers
    inputs = tf_keras.Input((7,), dtype="int32")
    x = layers.Embedding(20, 8, mask_zero=True)(inputs)
    x = layers.Bidirectional(layers.LSTM(6, return_sequences=True))(x)
    x = layers.Bidirectional(layers.GRU(5))(x)
    model = tf_keras.Model(inputs, layers.Dense(3)(x))
    return tf_keras_serving(model, tf.TensorSpec([None, 7], tf.int32, name="tokens"))


def padded_tokens(signature, key, shape, dtype, rng, batch):
    """Token ids 1..19 with a zero-padded tail of random length (the mask matters)."""
    tokens = rng.integers(1, 20, size=(batch, 7))
    lengths = rng.integers(1, 8, size=batch)
    return np.where(np.arange(7)[None, :] < lengths[:, None], tokens, 0).astype(dtype)


def tfkeras_text_classifier(dtype):
    import tensorflow as tf
    import tf_keras
    use_float(dtype)
    layers = tf_keras.layers
    inputs = tf_keras.Input((), dtype="string")
    x = layers.TextVectorization(vocabulary=VOCABULARY, output_sequence_length=6)(inputs)
    x = layers.Embedding(len(VOCABULARY) + 2, 4)(x)
    x = layers.GlobalAveragePooling1D()(x)
    model = tf_keras.Model(inputs, layers.Dense(2, activation="softmax")(x))
    return tf_keras_serving(model, tf.TensorSpec([None], tf.string, name="text"), track_owner=True)


def tfkeras_subclassed(dtype):
    import tensorflow as tf
    import tf_keras
    use_float(dtype)

    class ResidualBlock(tf_keras.Model):
        def __init__(self):
            super().__init__()
            self.first = tf_keras.layers.Dense(8, activation="relu")
            self.second = tf_keras.layers.Dense(8)
            self.norm = tf_keras.layers.LayerNormalization()
            self.head = tf_keras.layers.Dense(2)

        def call(self, x, training=False):
            hidden = self.first(x)
            hidden = self.norm(hidden + self.second(hidden))
            gate = tf.cast(tf.reduce_mean(x, axis=-1, keepdims=True) > 0, x.dtype)
            return self.head(hidden * gate + hidden * (1 - gate) * 0.5)

    model = ResidualBlock()
    model(tf.zeros([1, 8], dtype))
    return tf_keras_serving(model, tf.TensorSpec([None, 8], dtype, name="features"))


def tf_keras_entries():
    return [
        Entry("tfkeras_bidirectional_rnn", "tf_keras", "tf_keras",
              "Embedding(mask_zero) -> Bidirectional LSTM -> Bidirectional GRU (masked)",
              tfkeras_bidirectional_rnn, feeds=padded_tokens),
        Entry("tfkeras_text_classifier", "tf_keras", "tf_keras",
              "tf_keras TextVectorization -> Embedding (ResourceGather) -> pooling -> softmax",
              tfkeras_text_classifier, feeds=sentence_feed),
        Entry("tfkeras_subclassed", "tf_keras", "tf_keras",
              "subclassed tf_keras.Model with a residual, LayerNorm and a data-dependent gate",
              tfkeras_subclassed),
    ]


ENTRIES = [*application_entries(), *hub_entries(), *mixed_entries(), *preprocessing_entries(),
           *tf_keras_entries()]
