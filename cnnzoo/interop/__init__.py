"""Models crossing into and out of cnnzoo: Keras files in, deployable files out.

Why this package exists: Keras' layout (HWIO kernels, transposed Dense weights, the NHWC flatten
order) is a fact about Keras, not about how cnnzoo computes, so it lives here
(:mod:`.keras_layout`) and nowhere else; :mod:`.keras_files` reads ``.h5``/``.keras`` files through
it, and :mod:`.deploy` writes ONNX, TorchScript and torch.export files.
"""
