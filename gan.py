"""colorizer_5's adversarial training (pix2pix, Isola et al. 2017): the PatchGAN discriminator and
the Pix2Pix model, whose train_step alternates discriminator and generator updates."""

import setup_tf  # noqa: F401  (imports TensorFlow quietly; before anything imports Keras)
import keras
from keras import layers

from blocks import UNET_WIDTHS, unet_trunk

def patch_discriminator(input_shape, name="discriminator"):
    """PatchGAN (Isola et al. 2017) on (L, ab): one real/fake logit per overlapping patch."""
    L = keras.Input(input_shape[:2] + (1,), name=f"{name}_L")
    ab = keras.Input(input_shape[:2] + (2,), name=f"{name}_ab")
    x = layers.Concatenate(name=f"{name}_concat")([L, ab])
    for i, f in enumerate((64, 128, 256)):
        x = layers.Conv2D(f, 4, strides=2 if i < 2 else 1, padding="same", name=f"{name}_conv{i}")(x)
        if i:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"{name}_lrelu{i}")(x)
    out = layers.Conv2D(1, 4, padding="same", name=f"{name}_logits", dtype="float32")(x)
    return keras.Model([L, ab], out, name=name)


@keras.saving.register_keras_serializable(package="colorizers")
class Pix2Pix(keras.Model):
    """Conditional GAN colorizer (Isola et al. 2017; Nazeri et al. 2018 on CIFAR-10): a U-Net
    generator L -> ab and a PatchGAN discriminator, generator loss = adversarial + l1_weight * L1.
    Calling the model runs the generator. The reported `loss` is the L1 part (also on validation),
    so it is comparable across epochs and with colorizer_3."""

    def __init__(self, image_shape=(32, 32, 1), l1_weight=100.0, **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.l1_weight = tuple(image_shape), float(l1_weight)
        inputs = keras.Input(self.image_shape, name="generator_input")
        # Keras's batch norm: a subclassed model's saved weights are filed under its layers' class
        # names, so the shipped colorizer_5 loads only into the classes it was saved with
        x = unet_trunk(inputs, UNET_WIDTHS, "gen", fused=False)
        ab = layers.Conv2D(2, 1, activation="tanh", name="gen_ab", dtype="float32")(x)
        self.generator = keras.Model(inputs, ab, name="generator")
        self.discriminator = patch_discriminator(self.image_shape)
        self.trackers = {k: keras.metrics.Mean(name=k) for k in ("loss", "g_adv", "d_loss")}
        self.built = True  # both halves are built functional models (BackupAndRestore requires it)

    @property
    def input_shape(self):
        return (None,) + self.image_shape

    @property
    def output_shape(self):
        return self.generator.output_shape

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def compile(self, optimizer=None, d_optimizer=None, **kwargs):
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5), **kwargs)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)

    def get_compile_config(self):
        return {}  # default optimizers; a loaded model is ready to predict or to train on

    def compile_from_config(self, config):
        self.compile(**config)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, batch):
        import tensorflow as tf
        L, ab = batch
        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(L, training=True)
            d_real = self.discriminator([L, ab], training=True)
            d_fake = self.discriminator([L, fake], training=True)
            g_adv = bce(tf.ones_like(d_fake), d_fake)
            l1 = tf.reduce_mean(tf.abs(ab - fake))
            g_loss = g_adv + self.l1_weight * l1
            d_loss = 0.5 * (bce(tf.ones_like(d_real), d_real) + bce(tf.zeros_like(d_fake), d_fake))
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator.trainable_variables
        self.optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
        for k, v in (("loss", l1), ("g_adv", g_adv), ("d_loss", d_loss)):
            self.trackers[k].update_state(v)
        return {k: t.result() for k, t in self.trackers.items()}

    def test_step(self, batch):
        L, ab = batch
        fake = self.generator(L, training=False)
        self.trackers["loss"].update_state(keras.ops.mean(keras.ops.abs(ab - fake)))
        return {"loss": self.trackers["loss"].result()}

    def get_config(self):
        return {"image_shape": list(self.image_shape), "l1_weight": self.l1_weight, "name": self.name}
