// Python bindings for the io area: the part file a download writes into. Every call that
// touches the file releases the GIL, so connections write and the hasher reads in parallel.
#include "pybind.hpp"  // must be first

#include <string>
#include <vector>

#include "hash/sha256.hpp"
#include "io/part_file.hpp"

namespace iris::bind {

void bind_io(py::module_& m) {
    using io::PartFile;
    const auto released = py::call_guard<py::gil_scoped_release>();
    py::class_<PartFile>(m, "PartFile", "A download's part file, written at any offset.")
        .def(py::init<std::string>(), "path"_a, released)
        .def("reserve", &PartFile::reserve, "size"_a, released)
        .def(
            "write_at",
            [](PartFile& file, uint64_t offset, const py::buffer& data) {
                // The buffer is taken (and later let go) with the GIL held; the write runs
                // without it.
                const py::buffer_info info = data.request();
                if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize)) {
                    throw py::value_error("PartFile.write_at needs a contiguous bytes-like object");
                }
                const auto* bytes = static_cast<const uint8_t*>(info.ptr);
                const auto size = static_cast<size_t>(info.size * info.itemsize);
                const py::gil_scoped_release release;
                file.write_at(offset, bytes, size);
            },
            "offset"_a, "data"_a)
        .def(
            "read_at",
            [](const PartFile& file, uint64_t offset, size_t size) {
                std::string buffer(size, '\0');
                size_t got = 0;
                {
                    const py::gil_scoped_release release;
                    got = file.read_at(offset, reinterpret_cast<uint8_t*>(buffer.data()), size);
                }
                buffer.resize(got);
                return py::bytes(buffer);
            },
            "offset"_a, "size"_a)
        .def("truncate", &PartFile::truncate, "size"_a, released)
        .def("sync", &PartFile::sync, released)
        .def("close", &PartFile::close, released)
        .def_property_readonly("size", &PartFile::size)
        .def_property_readonly("is_open", &PartFile::is_open)
        .def_property_readonly("path", &PartFile::path);

    m.def(
        "hash_range",
        [](const PartFile& file, const std::vector<hash::Sha256*>& hashers, uint64_t offset,
           uint64_t length) {
            // The caller keeps the hashers alive (the list holds them) and uses them from no
            // other thread meanwhile.
            const py::gil_scoped_release release;
            io::hash_range(file, hashers, offset, length);
        },
        "file"_a, "hashers"_a, "offset"_a, "length"_a);
}

}  // namespace iris::bind
