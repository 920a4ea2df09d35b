#include "common/read_only_file.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/byte_source.hpp"

namespace iris {
namespace {

std::string describe(const char* action, int err) {
    return std::string("cannot ") + action + ": " + std::strerror(err);
}

FileIdentity identity_from(const struct stat& st) {
    FileIdentity identity;
    identity.size = static_cast<uint64_t>(st.st_size);
#if defined(__APPLE__)
    identity.mtime_ns = int64_t{st.st_mtimespec.tv_sec} * 1'000'000'000 + st.st_mtimespec.tv_nsec;
#else
    identity.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
#endif
    identity.inode = static_cast<uint64_t>(st.st_ino);
    identity.device = static_cast<uint64_t>(st.st_dev);
    return identity;
}

}  // namespace

ReadOnlyFile::ReadOnlyFile(std::string path) : path_(std::move(path)) {
    do {
        // Non-blocking, so that opening a FIFO returns at once instead of waiting for a
        // writer; the type check below then refuses it. Regular files ignore the flag.
        fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) {
        const int err = errno;
        throw FileError(err, path_, describe("open", err));
    }
    struct stat st{};
    if (::fstat(fd_, &st) != 0) {
        const int err = errno;
        ::close(fd_);
        throw FileError(err, path_, describe("stat", err));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd_);
        throw FileError(EISDIR, path_, "is a directory, not a file");
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd_);
        throw FileError(EINVAL, path_, "not a regular file (a device, FIFO or socket)");
    }
    identity_ = identity_from(st);
}

ReadOnlyFile::ReadOnlyFile(ReadOnlyFile&& other) noexcept
    : path_(std::move(other.path_))
    , fd_(std::exchange(other.fd_, -1))
    , identity_(other.identity_) {}

ReadOnlyFile::~ReadOnlyFile() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

size_t ReadOnlyFile::read_at(uint64_t offset, uint8_t* buffer, size_t size) const {
    return read_fully_at(fd_, path_, offset, buffer, size);
}

size_t read_fully_at(int fd, const std::string& path, uint64_t offset, uint8_t* buffer,
                     size_t size) {
    size_t done = 0;
    while (done < size) {
        const ssize_t got
            = ::pread(fd, buffer + done, size - done, static_cast<off_t>(offset + done));
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int err = errno;
            throw FileError(err, path, describe("read", err));
        }
        if (got == 0) {
            break;  // end of file
        }
        done += static_cast<size_t>(got);
    }
    return done;
}

bool ReadOnlyFile::unchanged() const {
    struct stat now{};
    if (::fstat(fd_, &now) != 0 || identity_from(now) != identity_) {
        return false;  // written to (or truncated) through any name
    }
    struct stat named{};
    // Replaced: the path now names another file.
    return ::stat(path_.c_str(), &named) == 0 && identity_from(named) == identity_;
}

void ReadOnlyFile::advise_sequential() const noexcept {
#if defined(POSIX_FADV_SEQUENTIAL)
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
}

}  // namespace iris
