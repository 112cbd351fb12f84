"""The GPU check: ONNX Runtime on a bundle's export and a Keras 3 training smoke run on JAX or torch,
for a GPU host that has no TensorFlow (`python -m bench.gpu`; docs/performance.md "GPU check")."""
