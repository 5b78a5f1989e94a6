"""The reference: ``tf.nn.*``, eager, on the CPU; gradients through ``tf.GradientTape``.

Everything else in the project is checked against this module. It receives the
canonical form of ``impls._validate`` (float16 already promoted to float32, so
TF computes float16 input in float32 like every other backend).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up banner off the tables

import tensorflow as tf  # noqa: E402  (after the log level is set)

tf.config.set_visible_devices([], "GPU")

name = "tensorflow"


def softmax(logits):
    return tf.nn.softmax(logits).numpy()


def log_softmax(logits):
    return tf.nn.log_softmax(logits).numpy()


def softmax_cross_entropy_with_logits(labels, logits):
    return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits).numpy()


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits).numpy()


def sigmoid_cross_entropy_with_logits(labels, logits):
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits).numpy()


def _loss_and_grad(loss_fn, labels, logits):
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_fn(labels=labels, logits=x)
    return loss.numpy(), tape.gradient(loss, x).numpy()


def softmax_cross_entropy_with_logits_and_grad(labels, logits):
    return _loss_and_grad(tf.nn.softmax_cross_entropy_with_logits, labels, logits)


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits):
    return _loss_and_grad(tf.nn.sparse_softmax_cross_entropy_with_logits, labels, logits)
