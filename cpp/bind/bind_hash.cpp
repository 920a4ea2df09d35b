// Python bindings for the hash area: SHA-256 of buffers and files, piece manifests, parallel
// piece checks and the many-file pool. Every call that reads a file or many bytes releases
// the GIL; progress is a shared object of atomics that Python polls from its own thread.
#include "pybind.hpp"  // must be first

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hash/file_hash.hpp"
#include "hash/sha256.hpp"

namespace iris::bind {
namespace {

using hash::Sha256Digest;

hash::Sha256Backend backend_from_name(const std::string& name) {
    for (const hash::Sha256Backend backend : hash::available_backends()) {
        if (name == hash::backend_name(backend)) {
            return backend;
        }
    }
    throw py::value_error("SHA-256 backend '" + name + "' is not available on this CPU");
}

Sha256Digest digest_from_hex(const std::string& hex) {
    Sha256Digest digest{};
    const auto nibble = [&](char c) -> uint8_t {
        if (c >= '0' && c <= '9') {
            return static_cast<uint8_t>(c - '0');
        }
        if (c >= 'a' && c <= 'f') {
            return static_cast<uint8_t>(c - 'a' + 10);
        }
        throw py::value_error("not a lowercase hex SHA-256 digest: '" + hex + "'");
    };
    if (hex.size() != 64) {
        throw py::value_error("a SHA-256 digest has 64 hex digits: '" + hex + "'");
    }
    for (size_t i = 0; i < digest.size(); ++i) {
        digest[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    }
    return digest;
}

std::string sha256_bytes(const py::buffer& data, const std::optional<std::string>& backend) {
    const hash::Sha256Backend chosen = backend ? backend_from_name(*backend) : hash::best_backend();
    // The buffer_info (and its Py_buffer) is made and released with the GIL held.
    const py::buffer_info info = data.request();
    if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize)) {
        throw py::value_error("sha256_bytes needs a contiguous bytes-like object");
    }
    const auto* bytes = static_cast<const uint8_t*>(info.ptr);
    const auto size = static_cast<size_t>(info.size * info.itemsize);
    const py::gil_scoped_release release;
    hash::Sha256 hasher(chosen);
    hasher.update(bytes, size);
    return hash::to_hex(hasher.digest());
}

py::tuple sha256_file(const std::string& path, hash::Progress* progress) {
    hash::FileDigest digest;
    {
        const py::gil_scoped_release release;
        digest = hash::sha256_file(path, progress);
    }
    return py::make_tuple(hash::to_hex(digest.sha256), digest.size);
}

py::tuple build_manifest(const std::string& path, uint64_t piece_size, unsigned threads,
                         hash::Progress* progress) {
    hash::Manifest manifest;
    {
        const py::gil_scoped_release release;
        manifest = hash::build_manifest(path, piece_size, threads, progress);
    }
    py::list pieces;
    for (const Sha256Digest& piece : manifest.pieces) {
        pieces.append(hash::to_hex(piece));
    }
    return py::make_tuple(manifest.size, manifest.piece_size, hash::to_hex(manifest.sha256),
                          pieces);
}

std::vector<uint64_t> find_bad_pieces(const std::string& path, uint64_t size, uint64_t piece_size,
                                      const std::vector<std::string>& pieces, unsigned threads,
                                      hash::Progress* progress) {
    hash::Manifest manifest;
    manifest.size = size;
    manifest.piece_size = piece_size;
    manifest.pieces.reserve(pieces.size());
    for (const std::string& piece : pieces) {
        manifest.pieces.push_back(digest_from_hex(piece));
    }
    const py::gil_scoped_release release;
    return hash::find_bad_pieces(path, manifest, threads, progress);
}

py::list sha256_files(const std::vector<std::string>& paths, unsigned threads,
                      hash::Progress* progress) {
    std::vector<hash::FileOutcome> outcomes;
    {
        const py::gil_scoped_release release;
        outcomes = hash::sha256_files(paths, threads, progress);
    }
    py::list rows;
    for (const hash::FileOutcome& outcome : outcomes) {
        const bool failed = !outcome.error.empty();
        rows.append(
            py::make_tuple(failed ? py::object(py::none())
                                  : py::object(py::str(hash::to_hex(outcome.digest.sha256))),
                           outcome.digest.size,
                           failed ? py::object(py::str(outcome.error)) : py::object(py::none()),
                           outcome.error_number, outcome.changed));
    }
    return rows;
}

}  // namespace

void bind_hash(py::module_& m) {
    py::class_<hash::Progress>(m, "Progress",
                               "Bytes processed by a running hash operation, and its cancel flag.")
        .def(py::init<>())
        .def_property_readonly("bytes_done",
                               [](const hash::Progress& p) { return p.bytes_done.load(); })
        .def_property_readonly("bytes_total",
                               [](const hash::Progress& p) { return p.bytes_total.load(); })
        .def("cancel", [](hash::Progress& p) { p.cancel_requested.store(true); });

    py::class_<hash::Sha256>(m, "Sha256",
                             "Incremental SHA-256 whose state can be saved and restored.")
        .def(py::init([](const std::optional<std::string>& backend) {
                 return hash::Sha256(backend ? backend_from_name(*backend) : hash::best_backend());
             }),
             "backend"_a = py::none())
        .def(
            "update",
            [](hash::Sha256& hasher, const py::buffer& data) {
                const py::buffer_info info = data.request();
                if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize)) {
                    throw py::value_error("Sha256.update needs a contiguous bytes-like object");
                }
                const auto* bytes = static_cast<const uint8_t*>(info.ptr);
                const auto size = static_cast<size_t>(info.size * info.itemsize);
                const py::gil_scoped_release release;
                hasher.update(bytes, size);
            },
            "data"_a)
        .def("hexdigest", [](const hash::Sha256& hasher) { return hash::to_hex(hasher.digest()); })
        .def_property_readonly("bytes_hashed", &hash::Sha256::bytes_hashed)
        .def("copy", [](const hash::Sha256& hasher) { return hash::Sha256(hasher); })
        .def("save",
             [](const hash::Sha256& hasher) {
                 const std::vector<uint8_t> saved = hasher.save();
                 return py::bytes(reinterpret_cast<const char*>(saved.data()), saved.size());
             })
        .def_static(
            "restore",
            [](const py::bytes& saved) {
                const std::string_view view = saved;
                return hash::Sha256::restore(reinterpret_cast<const uint8_t*>(view.data()),
                                             view.size());
            },
            "saved"_a);

    m.def("sha256_backends", [] {
        std::vector<std::string> names;
        for (const hash::Sha256Backend backend : hash::available_backends()) {
            names.emplace_back(hash::backend_name(backend));
        }
        return names;
    });
    m.def("sha256_bytes", &sha256_bytes, "data"_a, "backend"_a = py::none());
    m.def("sha256_file", &sha256_file, "path"_a, "progress"_a = nullptr);
    m.def("build_manifest", &build_manifest, "path"_a, "piece_size"_a, "threads"_a,
          "progress"_a = nullptr);
    m.def("find_bad_pieces", &find_bad_pieces, "path"_a, "size"_a, "piece_size"_a, "pieces"_a,
          "threads"_a, "progress"_a = nullptr);
    m.def("sha256_files", &sha256_files, "paths"_a, "threads"_a, "progress"_a = nullptr);
    m.def("default_threads", &hash::default_threads);
}

}  // namespace iris::bind
