#include "probe/shared_library.hpp"

#include <utility>

#include <dlfcn.h>

namespace iris::probe {

SharedLibrary::SharedLibrary(SharedLibrary&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr))
    , name_(std::move(other.name_))
    , errors_(std::move(other.errors_)) {}

SharedLibrary& SharedLibrary::operator=(SharedLibrary&& other) noexcept {
    if (this != &other) {
        if (handle_ != nullptr) {
            ::dlclose(handle_);
        }
        handle_ = std::exchange(other.handle_, nullptr);
        name_ = std::move(other.name_);
        errors_ = std::move(other.errors_);
    }
    return *this;
}

SharedLibrary::~SharedLibrary() {
    if (handle_ != nullptr) {
        ::dlclose(handle_);
    }
}

SharedLibrary SharedLibrary::open_first(const std::vector<std::string>& candidates) {
    SharedLibrary library;
    for (const std::string& candidate : candidates) {
        // RTLD_LOCAL: a GPU runtime's symbols must not leak into later lookups.
        void* handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle != nullptr) {
            library.handle_ = handle;
            library.name_ = candidate;
            return library;
        }
        const char* reason = ::dlerror();
        library.errors_.push_back(reason != nullptr ? reason : candidate + ": cannot be opened");
    }
    return library;
}

std::string SharedLibrary::errors_text() const {
    std::string text;
    for (const std::string& error : errors_) {
        text += (text.empty() ? "" : "; ") + error;
    }
    return text;
}

void* SharedLibrary::symbol(const char* symbol) const {
    if (handle_ == nullptr) {
        return nullptr;
    }
    return ::dlsym(handle_, symbol);
}

}  // namespace iris::probe
