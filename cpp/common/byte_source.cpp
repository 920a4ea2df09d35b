#include "common/byte_source.hpp"

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#if defined(_WIN32)
#error "iris-models' byte sources support POSIX systems (Linux, Android, macOS) only for now"
#endif

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace iris {
namespace {

std::string describe(const std::string& action, int err) {
    return std::string("cannot ") + action + ": " + std::strerror(err);
}

/// Closes a descriptor on every exit path.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    [[nodiscard]] int get() const noexcept { return fd_; }

private:
    int fd_;
};

/// Opens a regular file for reading and returns it with its size. Directories and other
/// non-regular files are refused up front: mapping or reading them gives confusing errors.
std::pair<int, uint64_t> open_regular(const std::string& path) {
    int fd = -1;
    do {
        // Non-blocking, so that opening a FIFO returns at once instead of waiting for a
        // writer; the type check below then refuses it. Regular files ignore the flag.
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        const int err = errno;
        throw FileError(err, path, describe("open", err));
    }
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw FileError(err, path, describe("stat", err));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw FileError(EISDIR, path, "is a directory, not a file");
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw FileError(EINVAL, path, "not a regular file (a device, FIFO or socket)");
    }
    return {fd, static_cast<uint64_t>(st.st_size)};
}

class MappedFile final : public ByteSource {
public:
    MappedFile(void* address, uint64_t size, std::string path)
        : address_(address), size_(size), path_(std::move(path)) {}
    ~MappedFile() override {
        if (address_ != nullptr) {
            ::munmap(address_, static_cast<size_t>(size_));
        }
    }
    [[nodiscard]] const uint8_t* data() const noexcept override {
        return static_cast<const uint8_t*>(address_);
    }
    [[nodiscard]] uint64_t size() const noexcept override { return size_; }
    [[nodiscard]] const std::string& name() const noexcept override { return path_; }

private:
    void* address_;
    uint64_t size_;
    std::string path_;
};

class OwnedBytes final : public ByteSource {
public:
    OwnedBytes(std::string bytes, std::string name)
        : bytes_(std::move(bytes)), name_(std::move(name)) {}
    [[nodiscard]] const uint8_t* data() const noexcept override {
        return reinterpret_cast<const uint8_t*>(bytes_.data());
    }
    [[nodiscard]] uint64_t size() const noexcept override { return bytes_.size(); }
    [[nodiscard]] const std::string& name() const noexcept override { return name_; }

private:
    std::string bytes_;
    std::string name_;
};

}  // namespace

OpenedFile map_file(const std::string& path) {
    const auto [raw_fd, file_size] = open_regular(path);
    const FileDescriptor fd(raw_fd);
    if (file_size == 0) {
        return {std::make_shared<MappedFile>(nullptr, 0, path), 0};
    }
    if (file_size > static_cast<uint64_t>(SIZE_MAX)) {
        throw FileError(ENOMEM, path, "too large to map in this process");
    }
    void* address
        = ::mmap(nullptr, static_cast<size_t>(file_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (address == MAP_FAILED) {
        const int err = errno;
        throw FileError(err, path, describe("map", err));
    }
    // Parsers walk the header front to back; let the kernel read ahead for them.
    ::madvise(address, static_cast<size_t>(file_size), MADV_SEQUENTIAL);
    return {std::make_shared<MappedFile>(address, file_size, path), file_size};
}

OpenedFile read_file_prefix(const std::string& path, uint64_t max_bytes) {
    const auto [raw_fd, file_size] = open_regular(path);
    const FileDescriptor fd(raw_fd);
    const uint64_t wanted = file_size < max_bytes ? file_size : max_bytes;
    std::string bytes(static_cast<size_t>(wanted), '\0');
    uint64_t done = 0;
    while (done < wanted) {
        const ssize_t got = ::pread(fd.get(), bytes.data() + done,
                                    static_cast<size_t>(wanted - done), static_cast<off_t>(done));
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int err = errno;
            throw FileError(err, path, describe("read", err));
        }
        if (got == 0) {
            break;  // The file shrank while we read it; keep what we have.
        }
        done += static_cast<uint64_t>(got);
    }
    bytes.resize(static_cast<size_t>(done));
    return {std::make_shared<OwnedBytes>(std::move(bytes), path), file_size};
}

std::shared_ptr<const ByteSource> make_owned_source(std::string bytes, std::string name) {
    return std::make_shared<OwnedBytes>(std::move(bytes), std::move(name));
}

}  // namespace iris
