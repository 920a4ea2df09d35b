// Translates the core's C++ exceptions into the classes of iris_models.errors, once for all
// bindings: GGUFError and its subclasses carry the path, byte offset and bytes needed;
// FileError becomes the OSError subclass its errno implies (FileNotFoundError, ...).
#include "pybind.hpp"  // must be first

#include "common/byte_source.hpp"
#include "gguf/gguf_parser.hpp"
#include "hash/file_hash.hpp"

namespace iris::bind {
namespace {

py::handle errors_module() {
    // Imported once and kept for the life of the interpreter; the translator runs with the
    // GIL held, as pybind11 guarantees.
    PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> storage;
    return storage
        .call_once_and_store_result([] { return py::module_::import("iris_models.errors"); })
        .get_stored();
}

void raise_gguf_error(const gguf::GGUFError& error) {
    const char* class_name = "GGUFError";
    switch (error.kind()) {
    case gguf::ErrorKind::Malformed:
        break;
    case gguf::ErrorKind::Truncated:
        class_name = "GGUFTruncatedError";
        break;
    case gguf::ErrorKind::NeedMoreData:
        class_name = "GGUFNeedMoreDataError";
        break;
    }
    const py::object cls = errors_module().attr(class_name);
    py::object instance;
    if (error.kind() == gguf::ErrorKind::Malformed) {
        instance = cls(error.what(), "path"_a = error.source_name(), "offset"_a = error.offset());
    } else {
        instance = cls(error.what(), "path"_a = error.source_name(), "offset"_a = error.offset(),
                       "bytes_needed"_a = error.bytes_needed());
    }
    py::set_error(cls, instance);
}

void raise_with_path(const char* class_name, const char* message, const std::string& path) {
    const py::object cls = errors_module().attr(class_name);
    py::set_error(cls, cls(message, "path"_a = path));
}

void raise_file_error(const FileError& error) {
    const int code = error.code().value();
    // OSError(errno, reason, filename) returns the subclass that errno implies.
    const py::object exception
        = py::reinterpret_borrow<py::object>(PyExc_OSError)(code, error.reason(), error.path());
    py::set_error(py::type::of(exception), exception);
}

}  // namespace

void bind_errors(py::module_&) {
    py::register_exception_translator([](std::exception_ptr pointer) {
        try {
            if (pointer) {
                std::rethrow_exception(pointer);
            }
        } catch (const gguf::GGUFError& error) {
            raise_gguf_error(error);
        } catch (const FileError& error) {
            raise_file_error(error);
        } catch (const hash::FileChangedError& error) {
            raise_with_path("FileChangedError", error.what(), error.path());
        } catch (const hash::ManifestMismatch& error) {
            raise_with_path("ManifestError", error.what(), error.path());
        } catch (const hash::Cancelled& error) {
            const py::object cls = errors_module().attr("OperationCancelled");
            py::set_error(cls, cls(error.what()));
        }
    });
}

}  // namespace iris::bind
