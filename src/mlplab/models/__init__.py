"""Models with hand-written forward and backward passes."""

from mlplab.models.base import Model, build_model, model_class
from mlplab.models.cnn import CNN
from mlplab.models.mlp import MLP
from mlplab.models.softmax import SoftmaxRegression
from mlplab.models.two_layer import TwoLayerNet

__all__ = ["CNN", "MLP", "Model", "SoftmaxRegression", "TwoLayerNet", "build_model", "model_class"]
