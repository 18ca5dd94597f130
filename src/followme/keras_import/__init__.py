"""``followme import-keras``: a RoboND Keras 2 / TensorFlow 1 model -> a followme checkpoint.

  convert.py   the HDF5 files -> weights -> a checked checkpoint; the command (the module
               is ``models/keras_graph.py``)
  writer.py    small Keras files with known weights, for the tests
"""
