// The one header every binding file includes first: pybind11 and the names all bindings use.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;
using namespace pybind11::literals;

namespace iris::bind {

void bind_errors(py::module_& m);
void bind_gguf(py::module_& m);
void bind_hash(py::module_& m);
void bind_io(py::module_& m);
void bind_probe(py::module_& m);

}  // namespace iris::bind
