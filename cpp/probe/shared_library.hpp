// A library opened at run time (dlopen), so the core never links against a GPU runtime:
// a device without the library gets a quiet "not installed", not a failed import.
#pragma once

#include <string>
#include <vector>

namespace iris::probe {

class SharedLibrary {
public:
    SharedLibrary() = default;
    SharedLibrary(const SharedLibrary&) = delete;
    SharedLibrary& operator=(const SharedLibrary&) = delete;
    SharedLibrary(SharedLibrary&& other) noexcept;
    SharedLibrary& operator=(SharedLibrary&& other) noexcept;
    ~SharedLibrary();

    /// Opens the first of `candidates` that loads (names go through the dynamic linker's
    /// search path; paths are opened as given). Returns an unopened library when none does;
    /// `errors()` then says why each candidate failed.
    static SharedLibrary open_first(const std::vector<std::string>& candidates);

    [[nodiscard]] bool is_open() const { return handle_ != nullptr; }
    /// The candidate that was opened.
    [[nodiscard]] const std::string& name() const { return name_; }
    /// One line per candidate that failed to load, in the order tried.
    [[nodiscard]] const std::vector<std::string>& errors() const { return errors_; }
    /// The failures as one line, "first reason; second reason".
    [[nodiscard]] std::string errors_text() const;

    /// The address of `symbol`, or nullptr when the library does not export it.
    [[nodiscard]] void* symbol(const char* symbol) const;

    template <typename Function>
    [[nodiscard]] Function function(const char* symbol_name) const {
        // POSIX guarantees that a data pointer from dlsym converts to a function pointer.
        return reinterpret_cast<Function>(symbol(symbol_name));
    }

private:
    void* handle_ = nullptr;
    std::string name_;
    std::vector<std::string> errors_;
};

}  // namespace iris::probe
