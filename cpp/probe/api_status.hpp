// How a probe of one GPU compute API ended: shared by the Vulkan, OpenCL and CUDA probes so
// that every API answers in the same words.
#pragma once

#include <string>

namespace iris::probe {

enum class ApiStatus {
    Ok,            // the runtime answered; the device list may still be empty
    NotInstalled,  // no loader or runtime library on this system: a normal answer
    NoDriver,      // the loader is present but no driver (ICD) is installed or usable
    Error,         // the runtime failed in a way the detail text describes
};

inline const char* to_string(ApiStatus status) {
    switch (status) {
    case ApiStatus::Ok:
        return "ok";
    case ApiStatus::NotInstalled:
        return "not_installed";
    case ApiStatus::NoDriver:
        return "no_driver";
    case ApiStatus::Error:
        return "error";
    }
    return "error";
}

/// The first `limit` bytes of a fixed-size char array that a driver filled, up to its NUL:
/// a driver that forgets the terminator must not make us read past the array.
inline std::string bounded_string(const char* text, std::size_t limit) {
    std::size_t length = 0;
    while (length < limit && text[length] != '\0') {
        ++length;
    }
    return {text, length};
}

}  // namespace iris::probe
