"""Zoo entries: keras-hub vision and multimodal backbones (and the task models users export
with them) from small constructor configs with random weights, perturbed batch norms and
small fixed image sizes; nothing is downloaded. Built by zoo_keras.hub_builder (HubPart for
the encoders a model takes), fed by vision_feed (SAM and SAM3 prompts, PaliGemma's response
mask, Flux's positions, else zoo_keras.hub_feed: token ids, masks, images). Audio (Moonshine,
Whisper) and text backbones are in zoo_hub_text.py and zoo_keras.py."""
from __future__ import annotations

import numpy as np

from make_zoo import DEFAULT_BATCH_SIZES, Entry, keras_made
from zoo_keras import (HUB_SEQUENCE, HUB_VOCABULARY, HubPart, hub_builder, hub_feed, hub_model,
                       hub_note, perturb_batch_norm, use_float)

IMAGE = (32, 32, 3)
#: Points and boxes SAM is prompted with per image.
SAM_PROMPTS = 2


def small_resnet(block_type="basic_block", pre_activation=False, stages=2, stem=64, **extra):
    """A ResNet image encoder with ``stages`` stages (P2 up to P<stages+1>; keras-hub
    requires 64 filters in the first, and a basic block's stem must match them)."""
    return HubPart("ResNetBackbone", config=dict(
        input_conv_filters=[stem], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16, 16, 16][:stages], stackwise_num_blocks=[1] * stages,
        stackwise_num_strides=[1, 2, 2, 2][:stages], block_type=block_type,
        use_pre_activation=pre_activation, **extra))


def small_mit(image_shape=IMAGE):
    return HubPart("MiTBackbone", config=dict(
        layerwise_depths=[1, 1], image_shape=image_shape, hidden_dims=[8, 16], num_layers=2,
        layerwise_num_heads=[1, 2], layerwise_sr_ratios=[4, 2], max_drop_path_rate=0.0,
        layerwise_patch_sizes=[7, 3], layerwise_strides=[4, 2]))


def small_dinov2(**extra):
    config = dict(patch_size=14, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
                  image_shape=(28, 28, 3), position_embedding_shape=(56, 56, 3))
    if extra.get("image_shape"):
        config["position_embedding_shape"] = extra["image_shape"]
    return HubPart("DINOV2Backbone", config={**config, **extra})


def small_hgnetv2(**extra):
    return HubPart("HGNetV2Backbone", config=dict(
        depths=[1, 1], embedding_size=8, hidden_sizes=[16, 32], stem_channels=[3, 8, 8],
        hidden_act="relu", use_learnable_affine_block=True,
        stackwise_stage_filters=[[8, 8, 16, 1, 1, 3], [16, 8, 32, 1, 1, 3]],
        apply_downsample=[False, True], use_lightweight_conv_block=[False, True], **extra))


def dual_encoders(prefix, text_extra=None):
    """(vision, text) encoders of a CLIP-like model: 8x8 patches of 32x32 images, 8 tokens."""
    vision = HubPart(f"{prefix}VisionEncoder", (8, 16, 2, 2, 32), {"image_shape": IMAGE})
    text = HubPart(f"{prefix}TextEncoder", (64, 16, 16, 2, 2, 32),
                   {"max_sequence_length": 8, **(text_extra or {})})
    return {"vision_encoder": vision, "text_encoder": text}


#: short name -> (keras_hub.models constructor, config). Every vision and multimodal
#: backbone of keras-hub 0.32 is here except StableDiffusion3: its VAEBackbone part is not
#: public in keras_hub.models, so only a preset (a download) builds one.
SPECS = {
    "cspnet": ("CSPNetBackbone", dict(
        stem_filters=8, stem_kernel_size=3, stem_strides=1, stackwise_depth=[1, 1],
        stackwise_strides=2, stackwise_num_filters=[8, 16], block_type="dark_block",
        stage_type="csp", stem_padding="same", down_growth=True, bottle_ratio=(0.5, 1.0),
        block_ratio=(1.0, 0.5), expand_ratio=(2.0, 1.0), image_shape=IMAGE)),
    "densenet": ("DenseNetBackbone", dict(
        stackwise_num_repeats=[1, 1, 1, 1], growth_rate=4, image_shape=IMAGE)),
    "efficientnet": ("EfficientNetBackbone", dict(
        stackwise_width_coefficients=[1.0] * 3, stackwise_depth_coefficients=[1.0] * 3,
        stackwise_kernel_sizes=[3, 3, 5], stackwise_num_repeats=[1, 1, 2],
        stackwise_input_filters=[8, 8, 16], stackwise_output_filters=[8, 16, 16],
        stackwise_expansion_ratios=[1, 4, 4], stackwise_squeeze_and_excite_ratios=[0, 0, 0.25],
        stackwise_strides=[1, 2, 2], stackwise_block_types=["fused", "fused", "unfused"],
        stackwise_force_input_filters=[0] * 3, stackwise_nores_option=[False] * 3,
        num_features=32, input_shape=IMAGE)),
    "mobilenet": ("MobileNetBackbone", dict(
        stackwise_expansion=[[16, 24], [32, 48]], stackwise_num_blocks=[2, 2],
        stackwise_num_filters=[[8, 8], [16, 16]], stackwise_kernel_size=[[3, 3], [5, 5]],
        stackwise_num_strides=[[2, 1], [2, 1]], stackwise_se_ratio=[[None, None], [0.25, 0.25]],
        stackwise_activation=[["relu", "relu"], ["hard_swish", "hard_swish"], ["hard_swish"]],
        stackwise_padding=[[1, 1], [2, 2]], output_num_filters=32, depthwise_filters=8,
        depthwise_stride=2, depthwise_residual=False, squeeze_and_excite=0.5,
        last_layer_filter=48, input_num_filters=8, image_shape=IMAGE)),
    "mobilenetv5": ("MobileNetV5Backbone", dict(  # edge residual, universal inverted
        # residual and multi-query attention (with conditional position encoding)
        stackwise_block_types=[["er"], ["uir", "uir"], ["uir", "mqa"]],
        stackwise_num_blocks=[1, 2, 2], stackwise_num_filters=[[16], [24, 24], [32, 32]],
        stackwise_strides=[[2], [2, 1], [2, 1]],
        stackwise_act_layers=[["relu"], ["gelu", "gelu"], ["gelu", "gelu"]],
        stackwise_exp_ratios=[[4.0], [4.0, 4.0], [4.0, 0.0]],
        stackwise_se_ratios=[[0.0], [0.0, 0.0], [0.0, 0.0]],
        stackwise_dw_kernel_sizes=[[0], [5, 5], [3, 0]],
        stackwise_dw_start_kernel_sizes=[[0], [3, 0], [0, 0]],
        stackwise_dw_end_kernel_sizes=[[0], [0, 3], [0, 0]],
        stackwise_exp_kernel_sizes=[[3], [0, 0], [0, 0]],
        stackwise_pw_kernel_sizes=[[1], [0, 0], [0, 0]],
        stackwise_num_heads=[[0], [0, 0], [0, 2]], stackwise_key_dims=[[0], [0, 0], [0, 8]],
        stackwise_value_dims=[[0], [0, 0], [0, 8]], stackwise_kv_strides=[[0], [0, 0], [0, 1]],
        stackwise_use_cpe=[[False], [False, False], [False, True]], stem_size=8,
        num_features=32, use_msfa=True, msfa_indices=(-2, -1), msfa_output_resolution=4,
        image_shape=IMAGE)),
    "resnet": ("ResNetBackbone", dict(small_resnet(stages=3).config, image_shape=IMAGE)),
    "resnet_v2": ("ResNetBackbone", dict(
        small_resnet("bottleneck_block", pre_activation=True, stages=3).config, image_shape=IMAGE)),
    "vgg": ("VGGBackbone", dict(
        stackwise_num_repeats=[1, 2], stackwise_num_filters=[8, 16], image_shape=IMAGE)),
    "xception": ("XceptionBackbone", dict(
        stackwise_conv_filters=[[8, 16], [32, 32], [32, 32], [48, 48]],
        stackwise_pooling=[False, True, False, False], image_shape=IMAGE)),
    "hgnetv2": ("HGNetV2Backbone", dict(small_hgnetv2().config, image_shape=IMAGE)),
    "mit": ("MiTBackbone", small_mit().config),
    "segformer": ("SegFormerBackbone", dict(image_encoder=small_mit(), projection_filters=16)),
    "deeplabv3": ("DeepLabV3Backbone", dict(
        image_encoder=small_resnet(stages=3), low_level_feature_key="P2",
        spatial_pyramid_pooling_key="P4", dilation_rates=[2, 4], upsampling_size=4,
        projection_filters=8, image_shape=(64, 64, 3))),
    "dinov2": ("DINOV2Backbone", small_dinov2(num_register_tokens=2).config),
    "dinov2_swiglu": ("DINOV2Backbone", small_dinov2(use_swiglu_ffn=True,
                                                     apply_layernorm=True).config),
    "dinov3": ("DINOV3Backbone", dict(
        patch_size=16, num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=32,
        num_register_tokens=2, image_shape=IMAGE)),
    "swin": ("SwinTransformerBackbone", dict(
        image_shape=IMAGE, embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4,
        drop_path=0.0)),
    "vitdet": ("ViTDetBackbone", dict(
        image_shape=(16, 16, 3), patch_size=2, hidden_size=8, num_layers=2,
        global_attention_layer_indices=[1], intermediate_dim=16, num_heads=2,
        num_output_channels=4, window_size=4)),
    "clip": ("CLIPBackbone", dict(dual_encoders("CLIP"), projection_dim=16)),
    "siglip": ("SigLIPBackbone", dual_encoders("SigLIP")),
    "metaclip2": ("MetaCLIP2Backbone", dict(dual_encoders("MetaCLIP2"), projection_dim=16)),
    "basnet": ("BASNetBackbone", dict(
        # projection_filters: the stem's (BASNet runs the encoder's stages on its own
        # projection); its bridge and decoder convolutions have 8 times as many
        image_encoder=small_resnet("bottleneck_block", stages=4, stem=8), num_classes=1,
        image_shape=IMAGE, projection_filters=8)),
    "retinanet": ("RetinaNetBackbone", dict(
        image_encoder=small_resnet(stages=4), min_level=3, max_level=5, use_p5=False,
        use_fpn_batch_norm=True, image_shape=(64, 64, 3))),
    "dfine": ("DFineBackbone", dict(  # exported by flat_serving: it returns tuples
        backbone=small_hgnetv2(out_features=["stage1", "stage2"]),
        decoder_in_channels=[16, 16], encoder_hidden_dim=16, num_denoising=0, num_labels=4,
        hidden_dim=16, learn_initial_query=False, num_queries=6, anchor_image_size=IMAGE[:2],
        feat_strides=[4, 8], num_feature_levels=2, encoder_in_channels=[16, 32],
        encode_proj_layers=[1], num_attention_heads=2, encoder_ffn_dim=32, num_encoder_layers=1,
        hidden_expansion=0.5, depth_multiplier=0.5, eval_idx=-1, num_decoder_layers=2,
        decoder_attention_heads=2, decoder_ffn_dim=32, decoder_n_points=[2, 2], lqe_hidden_dim=8,
        num_lqe_layers=2, out_features=["stage1", "stage2"], image_shape=IMAGE, seed=0)),
    "depth_anything": ("DepthAnythingBackbone", dict(
        image_encoder=small_dinov2(num_layers=4, apply_layernorm=True, image_shape=(126, 126, 3)),
        reassemble_factors=[4, 2, 1, 0.5], neck_hidden_dims=[8, 8, 16, 16],
        fusion_hidden_dim=16, head_hidden_dim=8, head_in_index=-1,
        feature_keys=["stage1", "stage2", "stage3", "stage4"])),
    "parseq": ("PARSeqBackbone", dict(
        image_encoder=HubPart("ViTBackbone", config=dict(
            image_shape=(16, 32, 3), patch_size=(4, 8), num_layers=1, num_heads=2,
            hidden_dim=16, mlp_dim=32, use_class_token=False)),
        vocabulary_size=HUB_VOCABULARY, max_label_length=HUB_SEQUENCE, decoder_hidden_dim=16,
        num_decoder_layers=1, num_decoder_heads=2, decoder_mlp_dim=32, dropout_rate=0.0,
        attention_dropout=0.0)),
    "sam": ("SAMBackbone", dict(
        image_encoder=HubPart("ViTDetBackbone", config=dict(
            hidden_size=16, num_layers=2, intermediate_dim=32, num_heads=2,
            global_attention_layer_indices=[1], patch_size=4, num_output_channels=8,
            window_size=2, image_shape=(16, 16, 3))),
        prompt_encoder=HubPart("SAMPromptEncoder", config=dict(
            hidden_size=8, image_embedding_size=(4, 4), input_image_size=(16, 16),
            mask_in_channels=4)),
        mask_decoder=HubPart("SAMMaskDecoder", config=dict(
            num_layers=2, hidden_size=8, intermediate_dim=16, num_heads=2, embedding_dim=8,
            num_multimask_outputs=3, iou_head_depth=2, iou_head_hidden_dim=8)))),
    "paligemma": ("PaliGemmaBackbone", dict(
        vocabulary_size=HUB_VOCABULARY, image_size=16, num_layers=2, num_query_heads=2,
        num_key_value_heads=1, hidden_dim=8, intermediate_dim=16, head_dim=4, vit_patch_size=4,
        vit_num_layers=2, vit_num_heads=2, vit_hidden_dim=8, vit_intermediate_dim=16)),
    "blip2": ("BLIP2Backbone", dict(
        vision_encoder=HubPart("BLIP2VisionEncoder", config=dict(
            image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=8,
            intermediate_dim=16, use_patch_bias=True, use_class_token=True, use_mha_bias=True,
            use_mlp_bias=True, dropout_rate=0.0, layer_norm_epsilon=1e-6,
            initializer_range=0.02)),
        qformer=HubPart("BLIP2QFormer", config=dict(
            num_query_tokens=2, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
            vision_dim=8, cross_attention_frequency=1, dropout=0.0, layer_norm_epsilon=1e-6)),
        language_model=HubPart("BLIP2CustomOPT", config=dict(
            vocabulary_size=HUB_VOCABULARY, num_layers=2, num_heads=2, hidden_dim=8,
            intermediate_dim=16, num_query_tokens=2, qformer_hidden_dim=8, dropout=0.0,
            max_sequence_length=16)))),
    "videoprism": ("VideoPrismBackbone", dict(
        image_shape=(16, 16, 3), num_frames=2, patch_size=4, hidden_dim=16, intermediate_dim=32,
        num_heads=2, num_spatial_layers=1, num_temporal_layers=1, num_auxiliary_layers=1,
        vocabulary_size=0, num_text_layers=0)),
    "videoprism_text": ("VideoPrismBackbone", dict(
        image_shape=(16, 16, 3), num_frames=2, patch_size=4, hidden_dim=16, intermediate_dim=32,
        num_heads=2, num_spatial_layers=1, num_temporal_layers=1, num_auxiliary_layers=1,
        vocabulary_size=HUB_VOCABULARY, num_text_layers=1, attention_logit_soft_cap=50.0)),
    "flux": ("FluxBackbone", dict(  # the diffusion transformer; image and text latents given
        input_channels=16, hidden_size=32, mlp_ratio=2.0, num_heads=2, depth=1,
        depth_single_blocks=1, axes_dim=[4, 6, 6], theta=10_000, use_bias=True,
        guidance_embed=True, image_shape=(16, 16), text_shape=(8, 16), image_ids_shape=(16, 3),
        text_ids_shape=(8, 3), y_shape=(16,))),
    "sam3": ("SAM3PromptableConceptBackbone", dict(
        vision_encoder=HubPart("SAM3VisionEncoder", config=dict(
            image_shape=(28, 28, 3), patch_size=14, num_layers=2, hidden_dim=16,
            intermediate_dim=32, num_heads=2, fpn_hidden_dim=16,
            fpn_scale_factors=[4.0, 2.0, 1.0, 0.5], pretrain_image_shape=(42, 42, 3),
            window_size=2, global_attn_indexes=[1, 2])),
        text_encoder=HubPart("SAM3TextEncoder", config=dict(
            vocabulary_size=HUB_VOCABULARY, embedding_dim=16, hidden_dim=16, num_layers=2,
            num_heads=2, intermediate_dim=32)),
        geometry_encoder=HubPart("SAM3GeometryEncoder", config=dict(
            num_layers=2, hidden_dim=16, intermediate_dim=32, num_heads=2, roi_size=7)),
        detr_encoder=HubPart("SAM3DetrEncoder", config=dict(
            num_layers=2, hidden_dim=16, intermediate_dim=32, num_heads=2)),
        detr_decoder=HubPart("SAM3DetrDecoder", config=dict(
            image_shape=(28, 28, 3), patch_size=14, num_layers=2, hidden_dim=16,
            intermediate_dim=32, num_heads=2, num_queries=8)),
        mask_decoder=HubPart("SAM3MaskDecoder", config=dict(
            num_upsampling_stages=3, hidden_dim=16, num_heads=2)))),
}

#: Task models users export with their heads (preprocessor=None: the serving input is the image).
TASKS = {
    "resnet_classifier": ("ResNetImageClassifier", dict(
        backbone=HubPart("ResNetBackbone", config=dict(small_resnet(stages=2).config,
                                                      image_shape=IMAGE)),
        num_classes=5, preprocessor=None)),
    "segformer_segmenter": ("SegFormerImageSegmenter", dict(
        backbone=HubPart("SegFormerBackbone", config=dict(image_encoder=small_mit(),
                                                          projection_filters=16)),
        num_classes=4, preprocessor=None)),
    "deeplabv3_segmenter": ("DeepLabV3ImageSegmenter", dict(
        backbone=HubPart("DeepLabV3Backbone", config=SPECS["deeplabv3"][1]),
        num_classes=3, activation="softmax", preprocessor=None)),
    "mobilenet_classifier": ("MobileNetImageClassifier", dict(
        backbone=HubPart("MobileNetBackbone", config=SPECS["mobilenet"][1]), num_classes=5,
        num_features=16, preprocessor=None)),
    "efficientnet_classifier": ("EfficientNetImageClassifier", dict(
        backbone=HubPart("EfficientNetBackbone", config=SPECS["efficientnet"][1]),
        num_classes=5, activation="softmax", preprocessor=None)),
    "vit_classifier": ("ViTImageClassifier", dict(
        backbone=HubPart("ViTBackbone", config=dict(
            image_shape=IMAGE, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
            mlp_dim=32)),
        num_classes=5, intermediate_dim=8, preprocessor=None)),
    "sam_segmenter": ("SAMImageSegmenter", dict(
        backbone=HubPart("SAMBackbone", config=SPECS["sam"][1]), preprocessor=None)),
    "depth_anything_estimator": ("DepthAnythingDepthEstimator", dict(
        backbone=HubPart("DepthAnythingBackbone", config=SPECS["depth_anything"][1]),
        depth_estimation_type="relative", preprocessor=None)),
    "basnet_segmenter": ("BASNetImageSegmenter", dict(
        backbone=HubPart("BASNetBackbone", config=SPECS["basnet"][1]), preprocessor=None)),
    "retinanet_detector": ("RetinaNetObjectDetector", dict(
        backbone=HubPart("RetinaNetBackbone", config=SPECS["retinanet"][1]), num_classes=3,
        pre_logits_num_conv_layers=1, preprocessor=None)),
}
#: keras-hub's NonMaxSuppression needs a static batch size: the detections are exported
#: for batches of this many images.
DETECTION_BATCH = 2
#: Random weights predict box deltas of several units (boxes hundreds of image sizes wide or
#: a thousandth of a pixel tall, whose overlaps hinge on float32 rounding); scaled by this,
#: the boxes stay near their anchors as a trained detector's do.
BOX_DELTA_SCALE = 0.01

#: Backbones exported with a free image size, as users often do (image_shape (None, None, 3)):
#: short name -> (constructor, config, image side fed at batch 1, at batch 3).
DYNAMIC = {
    "resnet_dynamic": ("ResNetBackbone", dict(SPECS["resnet"][1], image_shape=(None, None, 3)),
                       (32, 48)),
    "efficientnet_dynamic": ("EfficientNetBackbone",
                             dict(SPECS["efficientnet"][1], input_shape=(None, None, 3)), (32, 40)),
    "cspnet_dynamic": ("CSPNetBackbone", dict(SPECS["cspnet"][1], image_shape=(None, None, 3)),
                       (32, 24)),
}


def vision_feed(signature, key, shape, dtype, rng, batch):
    """SAM prompts (points and boxes inside the 16x16 image, labels 0/1, no masks), else
    hub_feed (token ids, images)."""
    if key == "points":
        return rng.integers(0, 16, size=(batch, SAM_PROMPTS, 2)).astype(dtype)
    if key == "labels":
        return rng.integers(0, 2, size=(batch, SAM_PROMPTS)).astype(dtype)
    if key == "boxes" and shape[-1] == 5:  # SAM3: batch index, normalised cx, cy, w, h
        centres = rng.uniform(0.25, 0.75, size=(batch, 1, 2))
        sizes = rng.uniform(0.1, 0.5, size=(batch, 1, 2))
        index = np.arange(batch, dtype=float).reshape(batch, 1, 1)
        return np.concatenate([index, centres, sizes], axis=-1).astype(dtype)
    if key == "box_labels":
        return rng.integers(0, 2, size=(batch, 1)).astype(dtype)
    if key == "boxes":
        corners = np.sort(rng.integers(0, 16, size=(batch, 1, 2, 2)), axis=2)
        return corners.astype(dtype)
    if key == "masks":
        return np.zeros((batch, 0, 16, 16, 1), dtype)
    if key == "response_mask":  # PaliGemma: the prompt is all prefix
        return np.zeros(shape_at(shape, batch), dtype)
    if key in ("image_ids", "text_ids"):  # Flux: (frame, row, column) positions
        return rng.integers(0, 8, size=shape_at(shape, batch)).astype(dtype)
    return hub_feed(signature, key, shape, dtype, rng, batch)


def shape_at(shape, batch):
    return [batch if i == 0 else HUB_SEQUENCE if d is None else d for i, d in enumerate(shape)]


def sized_feed(sides):
    """Images of sides[0] pixels square at batch 1, sides[1] at batch 3 (free image size)."""
    def feed(signature, key, shape, dtype, rng, batch):
        side = sides[0] if batch == 1 else sides[1]
        return hub_feed(signature, key, [batch, side, side, shape[-1]], dtype, rng, batch)
    return feed


def flat_serving(constructor, **config):
    """hub_builder's model exported through an endpoint that returns each tuple output as
    <key>_0, <key>_1, ...: TensorFlow cannot save a signature returning a tuple in a dict
    (DFineBackbone's decoder_hidden_states), so users export it this way."""
    def build(dtype):
        import tensorflow as tf
        use_float(dtype)
        model = hub_model(constructor, dtype, config=config)
        perturb_batch_norm(model)

        def serve(*inputs):
            flat = {}
            for key, value in model(list(inputs) if len(inputs) > 1 else inputs[0]).items():
                if isinstance(value, (tuple, list)):
                    flat.update({f"{key}_{i}": part for i, part in enumerate(value)})
                else:
                    flat[key] = value
            return flat
        specs = [tf.TensorSpec(i.shape, i.dtype, name=i.name) for i in model.inputs]
        return eager_reference(keras_made(model, {"serving_default": (serve, specs)}), serve)
    return build


def eager_reference(made, serve):
    """``made`` whose float64 variant answers by calling ``serve`` eagerly on the feeds (in
    signature input order) instead of being exported and reloaded: tracing these is slow."""
    made.call = lambda feeds: {k: np.asarray(v) for k, v in serve(*feeds.values()).items()}
    return made


def detector_serving(constructor, **config):
    """An object detector exported with its decoding (anchors, box deltas, non-max
    suppression: what predict() returns) as the serving function, for DETECTION_BATCH images."""
    def build(dtype):
        import tensorflow as tf
        use_float(dtype)
        detector = hub_model(constructor, dtype, config=config)
        perturb_batch_norm(detector)
        box_layer = detector.box_head.prediction_layer  # box deltas of a trained model's size
        box_layer.kernel.assign(box_layer.kernel * BOX_DELTA_SCALE)

        def detect(images):
            return detector.decode_predictions(detector(images), images)
        specs = [tf.TensorSpec([DETECTION_BATCH, *detector.inputs[0].shape[1:]], dtype,
                               name="images")]
        return eager_reference(keras_made(detector, {"serving_default": (detect, specs)}), detect)
    return build


def exported_reference(constructor, **config):
    """hub_builder's model with its float64 reference exported and run by TensorFlow like the
    float32 model, not called eagerly: the exports of SegFormer and DeepLabV3 run some of
    their BatchNormalization layers (SegFormer's fusing one, DeepLabV3's pyramid pooling
    projection and head norm) in training mode (batch moments, moving statistics assigned on
    every call), unlike their eager inference call, so only an export computes the same
    function. (A plain Keras model with a BatchNormalization in a keras.Sequential exports in
    inference mode: the cause lies in those keras-hub models.)"""
    build = hub_builder(constructor, **config)

    def exported(dtype):
        made = build(dtype)
        made.call = None
        return made
    return exported


#: Entries not built by plain hub_builder (see each builder's docstring).
BUILDERS = {"dfine": flat_serving, "segformer": exported_reference,
            "segformer_segmenter": exported_reference, "deeplabv3": exported_reference,
            "deeplabv3_segmenter": exported_reference}


def family(short) -> str:
    """keras-hub/<model>: a variant or task shares its backbone's family."""
    base, _, variant = short.rpartition("_")
    variants = ("v2", "swiglu", "classifier", "segmenter", "estimator", "detector", "dynamic",
                "text")
    return f"keras-hub/{base if variant in variants else short}"


#: keras-hub's SAM3 geometry encoder broadcasts its [batch, prompts] attention mask against
#: [batch, heads, prompts, prompts], which is right only for one image (TensorFlow fails on
#: three): it is exported and checked at batch 1.
BATCH_SIZES = {"sam3": (1,)}

ENTRIES = [Entry(f"keras_hub_{short}", family(short), "keras-hub",
                 hub_note(constructor, config),
                 BUILDERS.get(short, hub_builder)(constructor, **config),
                 feeds=vision_feed, batch_sizes=BATCH_SIZES.get(short, DEFAULT_BATCH_SIZES))
           for short, (constructor, config) in {**SPECS, **TASKS}.items()]
ENTRIES += [Entry(f"keras_hub_{short}", family(short), "keras-hub",
                  f"{hub_note(constructor, config)}, fed {sides[0]}x{sides[0]} images at batch 1, "
                  f"{sides[1]}x{sides[1]} at batch 3", hub_builder(constructor, **config),
                  feeds=sized_feed(sides))
            for short, (constructor, config, sides) in DYNAMIC.items()]
ENTRIES.append(Entry(
    "keras_hub_retinanet_detections", "keras-hub/retinanet", "keras-hub",
    "RetinaNetObjectDetector (the keras_hub_retinanet_detector model) exported with its "
    f"decode_predictions (anchors, box deltas, NonMaxSuppression) for batches of {DETECTION_BATCH}",
    detector_serving("RetinaNetObjectDetector", **TASKS["retinanet_detector"][1]),
    feeds=vision_feed, batch_sizes=(DETECTION_BATCH,)))
