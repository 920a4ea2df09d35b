#include "common/byte_source.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#if defined(_WIN32)
#error "iris-models' byte sources support POSIX systems (Linux, Android, macOS) only for now"
#endif

#include <sys/mman.h>

#include "common/read_only_file.hpp"

namespace iris {
namespace {

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
    const ReadOnlyFile file(path);
    const uint64_t file_size = file.size();
    if (file_size == 0) {
        return {std::make_shared<MappedFile>(nullptr, 0, path), 0};
    }
    if (file_size > static_cast<uint64_t>(SIZE_MAX)) {
        throw FileError(ENOMEM, path, "too large to map in this process");
    }
    void* address = ::mmap(nullptr, static_cast<size_t>(file_size), PROT_READ, MAP_PRIVATE,
                           file.descriptor(), 0);
    if (address == MAP_FAILED) {
        const int err = errno;
        throw FileError(err, path, std::string("cannot map: ") + std::strerror(err));
    }
    // Parsers walk the header front to back; let the kernel read ahead for them.
    ::madvise(address, static_cast<size_t>(file_size), MADV_SEQUENTIAL);
    return {std::make_shared<MappedFile>(address, file_size, path), file_size};
}

OpenedFile read_file_prefix(const std::string& path, uint64_t max_bytes) {
    const ReadOnlyFile file(path);
    const uint64_t wanted = std::min(file.size(), max_bytes);
    std::string bytes(static_cast<size_t>(wanted), '\0');
    // A file that shrank since it was opened gives fewer bytes; keep what there is.
    bytes.resize(file.read_at(0, reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()));
    return {std::make_shared<OwnedBytes>(std::move(bytes), path), file.size()};
}

std::shared_ptr<const ByteSource> make_owned_source(std::string bytes, std::string name) {
    return std::make_shared<OwnedBytes>(std::move(bytes), std::move(name));
}

}  // namespace iris
