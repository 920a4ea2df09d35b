#include "io/part_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

#include "common/byte_source.hpp"
#include "common/read_only_file.hpp"

namespace iris::io {
namespace {

[[noreturn]] void fail(const std::string& path, const char* what) {
    const int error_number = errno;
    throw FileError(error_number, path, std::string(what) + ": " + std::strerror(error_number));
}

constexpr size_t HASH_BLOCK = size_t{1} << 20;  // read back 1 MiB at a time: page-cache speed

}  // namespace

PartFile::PartFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        fail(path_, "cannot open the part file");
    }
    struct stat info{};
    if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
        const int error_number = S_ISREG(info.st_mode) ? errno : EINVAL;
        ::close(fd_);
        fd_ = -1;
        throw FileError(error_number, path_, "not a regular file");
    }
}

PartFile::~PartFile() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void PartFile::require_open() const {
    if (fd_ < 0) {
        throw FileError(EBADF, path_, "the part file is closed");
    }
}

void PartFile::reserve(uint64_t size) {
    require_open();
    if (size <= this->size()) {
        return;
    }
#if defined(__linux__) || defined(__ANDROID__)
    // posix_fallocate returns the error instead of setting errno.
    const int result = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
    if (result == 0) {
        return;
    }
    if (result != EOPNOTSUPP && result != EINVAL) {
        errno = result;
        fail(path_, "cannot reserve space for the download");
    }
#endif
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
        fail(path_, "cannot set the part file's length");
    }
}

void PartFile::write_at(uint64_t offset, const uint8_t* data, size_t size) {
    require_open();
    while (size > 0) {
        const ssize_t written = ::pwrite(fd_, data, size, static_cast<off_t>(offset));
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail(path_, "cannot write the part file");
        }
        if (written == 0) {
            errno = EIO;
            fail(path_, "cannot write the part file");
        }
        data += written;
        size -= static_cast<size_t>(written);
        offset += static_cast<uint64_t>(written);
    }
}

size_t PartFile::read_at(uint64_t offset, uint8_t* buffer, size_t size) const {
    require_open();
    return read_fully_at(fd_, path_, offset, buffer, size);
}

void PartFile::truncate(uint64_t size) {
    require_open();
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
        fail(path_, "cannot set the part file's length");
    }
}

void PartFile::sync() {
    require_open();
#if defined(__APPLE__)
    const int result = ::fsync(fd_);
#else
    const int result = ::fdatasync(fd_);
#endif
    if (result != 0) {
        fail(path_, "cannot flush the part file to disk");
    }
}

uint64_t PartFile::size() const {
    require_open();
    struct stat info{};
    if (::fstat(fd_, &info) != 0) {
        fail(path_, "cannot stat the part file");
    }
    return static_cast<uint64_t>(info.st_size);
}

void PartFile::close() {
    if (fd_ >= 0) {
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0 && errno != EINTR) {
            fail(path_, "cannot close the part file");
        }
    }
}

void hash_range(const PartFile& file, const std::vector<hash::Sha256*>& hashers, uint64_t offset,
                uint64_t length) {
    const auto buffer = std::make_unique<uint8_t[]>(HASH_BLOCK);
    while (length > 0) {
        const size_t want = length < HASH_BLOCK ? static_cast<size_t>(length) : HASH_BLOCK;
        const size_t got = file.read_at(offset, buffer.get(), want);
        if (got != want) {
            throw std::out_of_range(file.path() + ": the part file ends before the range to hash");
        }
        for (hash::Sha256* hasher : hashers) {
            hasher->update(buffer.get(), got);
        }
        offset += got;
        length -= got;
    }
}

}  // namespace iris::io
