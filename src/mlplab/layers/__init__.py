"""The layer engine every model stands on: small forward/backward pieces chained by a `Network`.

Adding a layer kind is one file in this package, its forward beside its backward. The contract (`base.Layer`):

* `__init__` registers each parameter with `self.add_param(local_name, value)`, which also makes its gradient
  buffer `self.grads[local_name]`. `weight_names` lists the local names that are weight matrices: L2 (`reg`) and
  AdamW's weight decay apply to those only, never to biases or other params.
* `add_buffer(local_name, value)` registers state that is not a parameter (BatchNorm's running mean and
  variance): it has no gradient, optimizers never see it, and model files and snapshots keep it.
* `output_shape(input_shape)` maps one sample's shape to the output's (no batch axis), raising `MlplabError` on a
  mismatch; `Network` chains it from the input shape to check the layers fit together. Inputs are (N, features)
  for dense layers and (N, H, W, C) images for Conv2D and MaxPool2D (Flatten joins the two); BatchNorm
  takes either, activations and dropout any shape.
* `forward(x, train)` returns the output for batch x. With `train` it keeps what backward needs (a reference to
  x, its own output, a mask). It never modifies x, and writes its output into `self.scratch(key, shape)`: arrays
  kept per shape (so per batch size), so a training step allocates nothing of size. The output is valid until the
  layer's next forward.
* `backward(dy, need_dx)` writes d(loss)/d(param) into `self.grads` (overwriting, never accumulating) and returns
  d(loss)/dx in its own scratch, or None when `need_dx` is false (the first layer with params: nobody needs the
  gradient of the input). It never modifies dy.
* `backward_sgd(dy, need_dx, lr, l2)` is optional: the base class runs backward and then plain SGD; a layer may
  fold the update into its products instead (Dense does), for `Network.sgd_step`.
* `onnx_nodes(graph, x, position)` adds the layer's evaluation-mode forward as ONNX nodes through `graph` (a
  `base.OnnxGraph`: initializers, nodes, NCHW images or rows) and returns the output tensor's name; `mlplab.export`
  chains them into a model's graph. Layers never import onnx.
* `absorbs_input_affine(size)` / `fold_input_affine(scale, shift)` are optional: a first layer that can take
  x·scale + shift into its params (Dense, through its bias) lets a model trained on standardized inputs take raw
  ones (`Network.fold_input_affine`).

Global names: the k-th layer that has params exposes them as local name + k (W1, b1 for the first Dense, W2, b2
for the second), which is what model files and optimizers see; buffers are named the same way (running_mean2).
"""

from mlplab.layers.activation import ACTIVATIONS, Activation, ReLU, Sigmoid, Softsign, Tanh, activation
from mlplab.layers.base import Layer
from mlplab.layers.batch_norm import BatchNorm
from mlplab.layers.conv2d import Conv2D
from mlplab.layers.dense import INITS, Dense
from mlplab.layers.dropout import Dropout
from mlplab.layers.flatten import Flatten
from mlplab.layers.max_pool import MaxPool2D
from mlplab.layers.network import Gradients, Network
from mlplab.layers.softmax_cross_entropy import SoftmaxCrossEntropy

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "Activation",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Gradients",
    "Layer",
    "MaxPool2D",
    "Network",
    "ReLU",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "Softsign",
    "Tanh",
    "activation",
]
