"""Models crossing into and out of cnnzoo: Keras files in and out, deployable files out.

Why this package exists: Keras' layout (HWIO kernels, transposed Dense weights, the NHWC flatten
order) is a fact about Keras, not about how cnnzoo computes, so it lives here
(:mod:`.keras_layout`) and nowhere else; :mod:`.keras_files` reads ``.h5``/``.keras`` files through
it and :mod:`.keras_writer` writes them; :mod:`.deploy` writes ONNX, TorchScript and torch.export
files; :mod:`.contract` holds what every exported file states about its input and classes.
"""
