"""``followme import-keras``: a RoboND Keras 2 / TensorFlow 1 model -> a followme checkpoint.

  graph.py     the Keras model config -> a PyTorch module (the layer registry, TF1 semantics)
  ops.py       TensorFlow's "same" padding and TF1 bilinear resizing
  convert.py   the HDF5 files -> weights -> a checked checkpoint; the command
  writer.py    small Keras files with known weights, for the tests
"""
