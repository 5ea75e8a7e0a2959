"""Tools: the commands beside the test run, each built on the cases and the engine.

show (`xfw-harness show`: a case as the PyTorch and Keras programs that compute it), new (`xfw-harness new`: a case
skeleton), port (`xfw-harness port`: a user's PyTorch model as a verified case and a Keras model), fuzz (`xfw-harness
fuzz`: property-based search for divergences), manual (the generated parts of the documentation).
"""
