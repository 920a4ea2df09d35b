// A download's part file: created or reopened, its space reserved up front, written at any
// offset (several connections fill it out of order, each from its own thread), read back for
// hashing, made durable on demand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hash/sha256.hpp"

namespace iris::io {

class PartFile {
public:
    /// Opens `path` for reading and writing, creating it (mode 0644) when missing. Throws
    /// FileError (common/byte_source.hpp) with the errno.
    explicit PartFile(std::string path);
    PartFile(const PartFile&) = delete;
    PartFile& operator=(const PartFile&) = delete;
    PartFile(PartFile&&) = delete;
    PartFile& operator=(PartFile&&) = delete;
    ~PartFile();

    /// Makes the file `size` bytes long with its blocks allocated, so that a full disk fails
    /// here with ENOSPC rather than half way through; where the file system cannot allocate
    /// ahead (EOPNOTSUPP), it only sets the length. Never shrinks the file.
    void reserve(uint64_t size);
    /// Writes all of `data` at `offset`, retrying short writes and EINTR. Safe to call from
    /// several threads at once for different ranges. Throws FileError (ENOSPC, EIO, ...).
    void write_at(uint64_t offset, const uint8_t* data, size_t size);
    /// Reads up to `size` bytes at `offset`; fewer only at the end of the file.
    size_t read_at(uint64_t offset, uint8_t* buffer, size_t size) const;
    /// Sets the length exactly (a restart from zero truncates to 0).
    void truncate(uint64_t size);
    /// Flushes the file's data to the device (fdatasync).
    void sync();
    [[nodiscard]] uint64_t size() const;
    void close();
    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    void require_open() const;

    std::string path_;
    int fd_ = -1;
};

/// Feeds `length` bytes of `file` starting at `offset` into every hasher in `hashers` (the
/// whole file's and a piece's, say) from one read of each block. Throws FileError, and
/// std::out_of_range when the file ends before `offset + length`.
void hash_range(const PartFile& file, const std::vector<hash::Sha256*>& hashers, uint64_t offset,
                uint64_t length);

}  // namespace iris::io
