// The only PYBIND11_MODULE: wires each area's bindings into iris_models._core.
#include "pybind.hpp"  // must be first

PYBIND11_MODULE(_core, m) {
    m.doc() = "iris-models' compiled core. Private: use the iris_models package instead.";
    // Errors first, so every later binding can raise the translated types.
    iris::bind::bind_errors(m);
    iris::bind::bind_gguf(m);
    iris::bind::bind_hash(m);
    iris::bind::bind_io(m);
    iris::bind::bind_probe(m);
}
