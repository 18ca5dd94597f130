"""Camera frames -> the hero's probability and mask: the model at inference time.

  frames.py      uint8 frames -> normalised tensor -> logits -> probabilities (batches too)
  onnx.py        a checkpoint -> an ONNX file (``followme export --onnx``), its runtime, its cache
  segmenter.py   one interface over PyTorch and ONNX Runtime: frame -> hero mask
  predict.py     ``followme predict``: folders of images -> the course's prediction PNGs
"""
