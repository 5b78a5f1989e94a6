"""The reference: ``tf.nn.*``, eager, on the CPU; gradients through ``tf.GradientTape``.

Everything else in the project is checked against this module. It receives the
canonical form of ``impls._validate`` (float16 already promoted to float32, so
TF computes float16 input in float32 like every other backend).

The loss options (``impls._options``), each with the TF or Keras call that has it:

* sparse labels, ``label_smoothing`` without weights: Keras's
  ``categorical_crossentropy(one_hot(labels), logits, from_logits=True,
  label_smoothing=eps)`` (Keras's ``sparse_categorical_crossentropy`` has no
  smoothing: keras#23487); without smoothing, Keras's
  ``sparse_categorical_crossentropy(from_logits=True)``;
* ``class_weights``: sparse without smoothing ``w[y] *
  tf.nn.sparse_softmax_cross_entropy_with_logits``; otherwise, and for every
  dense loss with options, composed as ``-reduce_sum(w q tf.nn.log_softmax(x))``
  with Keras's smoothing ``q = z (1 - eps) + eps / C``. Dense labels do not go
  through Keras's ``categorical_crossentropy``: it calls TF's fused op, whose
  gradient is ``softmax - labels`` and not the loss's when a row of labels does
  not sum to 1;
* ``ignore_index``: as Keras's ``ignore_class``, ``tf.where`` on the labels,
  the logits and the loss, so that an ignored row's logits (NaN included)
  reach neither the loss nor the gradient;
* ``z_loss``: ``lam * tf.reduce_logsumexp(x)**2``; the reduction's ``scale``: a product;
* sigmoid: Keras's smoothing ``z (1 - eps) + eps / 2`` (its
  ``binary_crossentropy`` averages over the last axis, so it is not called),
  then ``tf.nn.sigmoid_cross_entropy_with_logits``, or with ``pos_weight``
  ``tf.nn.weighted_cross_entropy_with_logits``.

Gradients with options go through ``tf.GradientTape`` like the rest.

The probability forms are Keras's own ``keras.ops.binary_crossentropy`` and
``keras.ops.categorical_crossentropy`` with ``from_logits=False``.
"""

import tensorflow as tf  # TF_CPP_MIN_LOG_LEVEL is left as the user set it (the README says what TF prints)

tf.config.set_visible_devices([], "GPU")

name = "tensorflow"
takes_options = True


def softmax(logits):
    return tf.nn.softmax(logits).numpy()


def log_softmax(logits):
    return tf.nn.log_softmax(logits).numpy()


def _options_loss(labels, logits, options, sparse):
    """Each row's loss with ``options``, composed as the module docstring says (``logits`` a tensor)."""
    from keras import losses  # only here: importing Keras costs a second

    classes, eps, w = logits.shape[-1], options.label_smoothing, options.class_weights
    keep = None
    if sparse and options.ignore_index is not None:
        keep = tf.not_equal(labels, options.ignore_index)
        labels = tf.where(keep, labels, 0)
        logits = tf.where(keep[:, None], logits, tf.zeros_like(logits))
    if sparse and w is None and not eps:
        loss = losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    elif sparse and w is None:
        loss = losses.categorical_crossentropy(tf.one_hot(labels, classes, dtype=logits.dtype), logits,
                                               from_logits=True, label_smoothing=eps)
    elif sparse and not eps:
        loss = tf.gather(w, labels) * tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    else:
        z = tf.one_hot(labels, classes, dtype=logits.dtype) if sparse else tf.constant(labels)
        q = z * (1 - eps) + eps / classes
        loss = -tf.reduce_sum((q if w is None else q * w) * tf.nn.log_softmax(logits), axis=-1)
    if options.z_loss:
        loss = loss + options.z_loss * tf.square(tf.reduce_logsumexp(logits, axis=-1))
    loss = loss * tf.constant(options.scale, logits.dtype)
    return loss if keep is None else tf.where(keep, loss, tf.zeros_like(loss))


def _loss(loss_fn, labels, logits, options, sparse):
    if options is None:
        return loss_fn(labels=labels, logits=logits)
    return _options_loss(labels, tf.convert_to_tensor(logits), options, sparse)


def softmax_cross_entropy_with_logits(labels, logits, options=None):
    return _loss(tf.nn.softmax_cross_entropy_with_logits, labels, logits, options, False).numpy()


def sparse_softmax_cross_entropy_with_logits(labels, logits, options=None):
    return _loss(tf.nn.sparse_softmax_cross_entropy_with_logits, labels, logits, options, True).numpy()


def sigmoid_cross_entropy_with_logits(labels, logits, options=None):
    if options is None:
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits).numpy()
    eps = options.label_smoothing
    z = labels * (1 - eps) + 0.5 * eps if eps else labels
    if options.pos_weight is None:
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=logits).numpy()
    return tf.nn.weighted_cross_entropy_with_logits(labels=z, logits=logits, pos_weight=options.pos_weight).numpy()


def _loss_and_grad(loss_fn, labels, logits, options, sparse):
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = _loss(loss_fn, labels, x, options, sparse)
    return loss.numpy(), tape.gradient(loss, x).numpy()


def _linear_loss(labels, hidden, weight, bias, options, softcap):
    """The loss of ``tf.matmul(hidden, weight, transpose_b=True) + bias`` (capped) by the sparse loss."""
    x = tf.matmul(hidden, weight, transpose_b=True)
    if bias is not None:
        x = x + bias
    if softcap is not None:
        x = softcap * tf.tanh(x / softcap)
    return _loss(tf.nn.sparse_softmax_cross_entropy_with_logits, labels, x, options, True)


def linear_cross_entropy(labels, hidden, weight, bias=None, options=None, softcap=None):
    return _linear_loss(labels, hidden, weight, bias, options, softcap).numpy()


def linear_cross_entropy_and_grad(labels, hidden, weight, bias=None, options=None, softcap=None):
    """The loss and the tape's gradients of its sum: hidden, weight (and bias); the logits are held."""
    inputs = [tf.constant(a) for a in (hidden, weight, bias) if a is not None]
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = _linear_loss(labels, *inputs[:2], inputs[2] if bias is not None else None, options, softcap)
    return (loss.numpy(),) + tuple(g.numpy() for g in tape.gradient(loss, inputs))


def softmax_cross_entropy_with_logits_and_grad(labels, logits, options=None):
    return _loss_and_grad(tf.nn.softmax_cross_entropy_with_logits, labels, logits, options, False)


def sparse_softmax_cross_entropy_with_logits_and_grad(labels, logits, options=None):
    return _loss_and_grad(tf.nn.sparse_softmax_cross_entropy_with_logits, labels, logits, options, True)


def binary_cross_entropy(labels, probs):
    from keras import ops
    return ops.convert_to_numpy(ops.binary_crossentropy(tf.constant(labels), tf.constant(probs)))


def categorical_cross_entropy(labels, probs):
    from keras import ops
    return ops.convert_to_numpy(ops.categorical_crossentropy(tf.constant(labels), tf.constant(probs)))
