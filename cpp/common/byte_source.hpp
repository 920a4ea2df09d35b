// Read-only byte sources the parsers walk: a memory-mapped file, or bytes owned elsewhere.
// Parsed results keep a shared_ptr to their source, so views into it stay valid.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

namespace iris {

/// An OS error on a named file (open, stat, map, read). Carries errno, the path, and a
/// short reason without the path ("cannot open: No such file or directory").
class FileError : public std::system_error {
public:
    FileError(int error_number, std::string path, std::string reason)
        : std::system_error(error_number, std::generic_category(), path + ": " + reason)
        , path_(std::move(path))
        , reason_(std::move(reason)) {}

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] const std::string& reason() const noexcept { return reason_; }

private:
    std::string path_;
    std::string reason_;
};

/// Immutable bytes with a stable address for the lifetime of the object.
class ByteSource {
public:
    ByteSource() = default;
    ByteSource(const ByteSource&) = delete;
    ByteSource& operator=(const ByteSource&) = delete;
    virtual ~ByteSource() = default;

    [[nodiscard]] virtual const uint8_t* data() const noexcept = 0;
    [[nodiscard]] virtual uint64_t size() const noexcept = 0;
    /// A name for messages: the file path, or a short description such as "<buffer>".
    [[nodiscard]] virtual const std::string& name() const noexcept = 0;
};

/// What opening a file yields: its bytes (all of them, or a prefix) and its real size.
struct OpenedFile {
    std::shared_ptr<const ByteSource> source;
    uint64_t file_size = 0;
};

/// Maps the whole of `path` read-only (a zero-length file gives an empty source).
/// Throws FileError; errno ENOMEM means the address space could not hold the mapping
/// (a 32-bit process and a large file), and callers may fall back to read_file_prefix.
OpenedFile map_file(const std::string& path);

/// Reads at most `max_bytes` from the start of `path` into memory, without mapping it.
OpenedFile read_file_prefix(const std::string& path, uint64_t max_bytes);

/// Bytes held in memory (a copy the source owns), named for messages.
std::shared_ptr<const ByteSource> make_owned_source(std::string bytes, std::string name);

}  // namespace iris
