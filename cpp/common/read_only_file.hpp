// A regular file opened for reading: the descriptor, what it was when opened (size, mtime,
// inode) so that a change while it is read can be noticed, and full positional reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace iris {

/// What identifies a file's contents cheaply: a rewrite changes the mtime or size, a
/// replacement (rename over it) changes the inode.
struct FileIdentity {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    uint64_t inode = 0;
    uint64_t device = 0;

    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

class ReadOnlyFile {
public:
    /// Opens `path`; throws FileError (from byte_source.hpp) for a missing file, a directory,
    /// a device, FIFO or socket, or no permission. Never blocks on a FIFO.
    explicit ReadOnlyFile(std::string path);
    ReadOnlyFile(const ReadOnlyFile&) = delete;
    ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;
    ReadOnlyFile(ReadOnlyFile&& other) noexcept;
    ReadOnlyFile& operator=(ReadOnlyFile&&) = delete;
    ~ReadOnlyFile();

    [[nodiscard]] int descriptor() const noexcept { return fd_; }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    /// The file as it was when opened.
    [[nodiscard]] const FileIdentity& identity() const noexcept { return identity_; }
    [[nodiscard]] uint64_t size() const noexcept { return identity_.size; }

    /// Reads up to `size` bytes at `offset`, retrying short reads; returns fewer only at the
    /// end of the file. Throws FileError.
    size_t read_at(uint64_t offset, uint8_t* buffer, size_t size) const;

    /// True when the path still names the same, unmodified file.
    [[nodiscard]] bool unchanged() const;

    /// Hints that the file will be read front to back (more read-ahead).
    void advise_sequential() const noexcept;

private:
    std::string path_;
    int fd_ = -1;
    FileIdentity identity_;
};

/// Reads up to `size` bytes of descriptor `fd` at `offset`, retrying short reads and EINTR;
/// fewer only at the end of the file. Throws FileError naming `path`.
size_t read_fully_at(int fd, const std::string& path, uint64_t offset, uint8_t* buffer,
                     size_t size);

}  // namespace iris
