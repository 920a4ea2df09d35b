// Python bindings for the GGUF parser: opening and parsing (GIL released), and plain records
// the iris_models.gguf facade turns into its public objects. Values stay in the source
// bytes; the document exports them through the buffer protocol for zero-copy numpy views.
#include "pybind.hpp"  // must be first

#include <optional>
#include <string>
#include <string_view>

#include "common/byte_source.hpp"
#include "gguf/ggml_types.hpp"
#include "gguf/gguf_parser.hpp"
#include "text.hpp"

namespace iris::bind {
namespace {

/// Bytes exported by a Python object (bytes, bytearray, memoryview, mmap), kept exported
/// for as long as the parse result lives, so the address stays valid without a copy.
class PythonBufferSource final : public ByteSource {
public:
    PythonBufferSource(py::handle object, std::string name) : name_(std::move(name)) {
        if (PyObject_GetBuffer(object.ptr(), &view_, PyBUF_SIMPLE) != 0) {
            throw py::error_already_set();
        }
    }
    PythonBufferSource(const PythonBufferSource&) = delete;
    PythonBufferSource& operator=(const PythonBufferSource&) = delete;
    ~PythonBufferSource() override {
        // The last reference may be dropped by a thread that released the GIL.
        const py::gil_scoped_acquire gil;
        PyBuffer_Release(&view_);
    }
    [[nodiscard]] const uint8_t* data() const noexcept override {
        return static_cast<const uint8_t*>(view_.buf);
    }
    [[nodiscard]] uint64_t size() const noexcept override {
        return static_cast<uint64_t>(view_.len);
    }
    [[nodiscard]] const std::string& name() const noexcept override { return name_; }

private:
    Py_buffer view_{};
    std::string name_;
};

/// What Python holds: a parsed document and, through it, the bytes it points into.
struct DocumentHandle {
    std::shared_ptr<const gguf::Document> document;

    [[nodiscard]] const gguf::Header& header() const { return document->header; }

    [[nodiscard]] const gguf::StringArrayIndex& string_array(uint32_t index) const {
        if (index >= header().string_arrays.size()) {
            throw py::index_error("no string array " + std::to_string(index));
        }
        return header().string_arrays[index];
    }
};

py::object scalar_object(const gguf::Scalar& scalar) {
    return std::visit([](auto value) -> py::object { return py::cast(value); }, scalar);
}

/// (type, element_type, count, offset, size_bytes, value, aux): value is decoded for
/// scalars and strings and None for arrays, which the facade reads lazily.
py::tuple value_record(const gguf::Document& document, const gguf::Value& value) {
    py::object decoded = py::none();
    if (value.type == gguf::ValueType::String) {
        decoded = decode_text(document.bytes_at(value.offset, value.count));
    } else if (value.type != gguf::ValueType::Array) {
        decoded = scalar_object(gguf::read_scalar(document, value));
    }
    return py::make_tuple(static_cast<uint32_t>(value.type),
                          static_cast<uint32_t>(value.element_type), value.count, value.offset,
                          value.size_bytes, decoded, value.aux);
}

py::list kv_records(const DocumentHandle& handle) {
    const gguf::Document& document = *handle.document;
    py::list records;
    for (const gguf::KeyValue& kv : document.header.kvs) {
        records.append(
            py::make_tuple(decode_text(document.key(kv)), value_record(document, kv.value)));
    }
    return records;
}

py::list nested_records(const DocumentHandle& handle, uint32_t first, uint64_t count) {
    const auto& nested = handle.header().nested_values;
    if (first > nested.size() || count > nested.size() - first) {
        throw py::index_error("nested value range out of bounds");
    }
    py::list records;
    for (uint64_t i = 0; i < count; ++i) {
        records.append(value_record(*handle.document, nested[first + i]));
    }
    return records;
}

py::list tensor_records(const DocumentHandle& handle) {
    const gguf::Document& document = *handle.document;
    const uint64_t data_offset = document.header.data_offset;
    py::list records;
    for (const gguf::TensorInfo& tensor : document.header.tensors) {
        py::tuple shape(tensor.n_dims);
        for (uint32_t d = 0; d < tensor.n_dims; ++d) {
            shape[d] = py::int_(tensor.ne[d]);
        }
        const py::object nbytes = tensor.nbytes ? py::object(py::int_(*tensor.nbytes)) : py::none();
        // The parse checked data_offset + offset against overflow.
        records.append(py::make_tuple(decode_text(document.tensor_name(tensor)), shape, tensor.type,
                                      data_offset + tensor.offset, nbytes, tensor.n_elements,
                                      tensor.record_offset));
    }
    return records;
}

/// Elements [start, stop) of a string array as a list, each made by `convert` (which
/// returns a new reference or nullptr with a Python error set).
template <class Convert>
py::list string_range(const DocumentHandle& handle, uint32_t array, uint64_t start, uint64_t stop,
                      Convert convert) {
    const gguf::StringArrayIndex& index = handle.string_array(array);
    if (start > stop || stop > index.count) {
        throw py::index_error("string range [" + std::to_string(start) + ", " + std::to_string(stop)
                              + ") out of range for " + std::to_string(index.count) + " elements");
    }
    auto items = py::reinterpret_steal<py::list>(PyList_New(static_cast<Py_ssize_t>(stop - start)));
    if (!items) {
        throw py::error_already_set();
    }
    gguf::StringCursor cursor(*handle.document, index, start);
    for (uint64_t i = start; i < stop; ++i) {
        PyObject* item = convert(cursor.next());
        if (item == nullptr) {
            throw py::error_already_set();
        }
        // A fresh list's slots are empty, so SET_ITEM (which steals `item`) is the whole job.
        PyList_SET_ITEM(items.ptr(), static_cast<Py_ssize_t>(i - start), item);
    }
    return items;
}

PyObject* raw_bytes_object(std::string_view bytes) {
    return PyBytes_FromStringAndSize(bytes.data(), static_cast<Py_ssize_t>(bytes.size()));
}

py::bytes raw_bytes(std::string_view bytes) {
    return {bytes.data(), bytes.size()};
}

DocumentHandle open_document(const std::string& path) {
    // Only C++ objects below: the walk runs without the GIL.
    const py::gil_scoped_release release;
    return {gguf::open_file(path)};
}

DocumentHandle parse_document(const py::handle& buffer, std::optional<uint64_t> file_size,
                              std::string name) {
    std::shared_ptr<const ByteSource> source
        = std::make_shared<PythonBufferSource>(buffer, std::move(name));
    const py::gil_scoped_release release;
    return {gguf::parse_source(std::move(source), file_size)};
}

py::list ggml_types() {
    py::list rows;
    for (const gguf::GGMLType& type : gguf::ggml_type_table()) {
        const char* status = type.status == gguf::TypeStatus::Current    ? "current"
                             : type.status == gguf::TypeStatus::Internal ? "internal"
                                                                         : "removed";
        rows.append(py::make_tuple(type.id, type.name, type.block_size, type.type_size, status));
    }
    return rows;
}

}  // namespace

void bind_gguf(py::module_& m) {
    py::class_<DocumentHandle>(m, "GGUFDocument", py::buffer_protocol(),
                               "A parsed GGUF header over its source bytes.")
        .def_buffer([](const DocumentHandle& handle) {
            const ByteSource& source = *handle.document->source;
            return py::buffer_info(const_cast<uint8_t*>(source.data()),
                                   static_cast<py::ssize_t>(source.size()),
                                   /*readonly=*/true);
        })
        .def_property_readonly("name",
                               [](const DocumentHandle& h) { return h.document->source->name(); })
        .def_property_readonly("source_size",
                               [](const DocumentHandle& h) { return h.document->source->size(); })
        .def_property_readonly("file_size",
                               [](const DocumentHandle& h) { return h.header().file_size; })
        .def_property_readonly("version",
                               [](const DocumentHandle& h) { return h.header().version; })
        .def_property_readonly("big_endian",
                               [](const DocumentHandle& h) { return h.header().big_endian; })
        .def_property_readonly("alignment",
                               [](const DocumentHandle& h) { return h.header().alignment; })
        .def_property_readonly("n_kv", [](const DocumentHandle& h) { return h.header().n_kv; })
        .def_property_readonly("n_tensors",
                               [](const DocumentHandle& h) { return h.header().n_tensors; })
        .def_property_readonly("end_of_kvs",
                               [](const DocumentHandle& h) { return h.header().end_of_kvs; })
        .def_property_readonly(
            "end_of_tensor_infos",
            [](const DocumentHandle& h) { return h.header().end_of_tensor_infos; })
        .def_property_readonly("data_offset",
                               [](const DocumentHandle& h) { return h.header().data_offset; })
        .def_property_readonly("data_size",
                               [](const DocumentHandle& h) { return h.header().data_size; })
        .def_property_readonly("warnings",
                               [](const DocumentHandle& h) {
                                   py::list out;
                                   for (const gguf::Warning& w : h.header().warnings) {
                                       out.append(py::make_tuple(w.offset, w.message));
                                   }
                                   return out;
                               })
        .def_property_readonly("warnings_dropped",
                               [](const DocumentHandle& h) { return h.header().warnings_dropped; })
        .def("kv_records", &kv_records)
        .def("nested_records", &nested_records, "first"_a, "count"_a)
        .def("tensor_records", &tensor_records)
        .def("string_count",
             [](const DocumentHandle& h, uint32_t array) { return h.string_array(array).count; })
        .def("string_item",
             [](const DocumentHandle& h, uint32_t array, uint64_t i) {
                 return decode_text(gguf::string_at(*h.document, h.string_array(array), i));
             })
        .def("string_raw",
             [](const DocumentHandle& h, uint32_t array, uint64_t i) {
                 return raw_bytes(gguf::string_at(*h.document, h.string_array(array), i));
             })
        .def("string_range",
             [](const DocumentHandle& h, uint32_t array, uint64_t start, uint64_t stop) {
                 return string_range(h, array, start, stop, decode_text_object);
             })
        .def("string_raw_range",
             [](const DocumentHandle& h, uint32_t array, uint64_t start, uint64_t stop) {
                 return string_range(h, array, start, stop, raw_bytes_object);
             });

    m.def("open_gguf", &open_document, "path"_a,
          "Map and parse the GGUF file at `path` (the GIL is released while parsing).");
    m.def("parse_gguf", &parse_document, "buffer"_a, "file_size"_a = py::none(),
          "name"_a = "<buffer>",
          "Parse a GGUF header from a bytes-like object holding a file's first bytes.");
    m.def("ggml_types", &ggml_types,
          "Rows (id, name, block_size, type_size, status) of the ggml type table.");
}

}  // namespace iris::bind
