// GGUF strings to Python str, fast: one pass validates UTF-8 exactly as CPython's strict
// decoder does and finds the widest code point, a second writes the characters straight into
// a str of the right width. Anything not valid UTF-8 goes to CPython's own decoder with
// errors="surrogateescape", so the result always equals bytes.decode("utf-8",
// "surrogateescape"). Vocabularies hold ~10^5 short, mostly non-ASCII strings, where
// CPython's general-purpose path spends more time on set-up than on decoding.
#pragma once

#include "pybind.hpp"  // must be first

#include <cstdint>
#include <cstring>
#include <string_view>

namespace iris::bind {

namespace detail {

/// Counts code points and finds the largest; false on any sequence CPython would reject
/// (overlong forms, surrogates, values past U+10FFFF, truncated sequences).
inline bool scan_utf8(const uint8_t* p, size_t n, size_t& n_chars, uint32_t& max_char) {
    size_t chars = 0;
    uint32_t widest = 0;
    size_t i = 0;
    while (i < n) {
        const uint8_t lead = p[i];
        if (lead < 0x80) {
            widest = widest < lead ? lead : widest;
            ++i;
        } else if (lead >= 0xC2 && lead <= 0xDF) {
            if (i + 1 >= n || (p[i + 1] & 0xC0) != 0x80) {
                return false;
            }
            const uint32_t c = (uint32_t{lead} & 0x1F) << 6 | (p[i + 1] & 0x3Fu);
            widest = widest < c ? c : widest;
            i += 2;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            if (i + 2 >= n || (p[i + 1] & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80) {
                return false;
            }
            const uint32_t c
                = (uint32_t{lead} & 0x0F) << 12 | (p[i + 1] & 0x3Fu) << 6 | (p[i + 2] & 0x3Fu);
            if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF)) {
                return false;  // overlong, or a UTF-16 surrogate
            }
            widest = widest < c ? c : widest;
            i += 3;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            if (i + 3 >= n || (p[i + 1] & 0xC0) != 0x80 || (p[i + 2] & 0xC0) != 0x80
                || (p[i + 3] & 0xC0) != 0x80) {
                return false;
            }
            const uint32_t c = (uint32_t{lead} & 0x07) << 18 | (p[i + 1] & 0x3Fu) << 12
                               | (p[i + 2] & 0x3Fu) << 6 | (p[i + 3] & 0x3Fu);
            if (c < 0x10000 || c > 0x10FFFF) {
                return false;
            }
            widest = widest < c ? c : widest;
            i += 4;
        } else {
            return false;  // a continuation byte as lead, C0/C1, or F5..FF
        }
        ++chars;
    }
    n_chars = chars;
    max_char = widest;
    return true;
}

/// Writes the code points of already-validated UTF-8 into `out`.
template <class Char>
void write_utf8(const uint8_t* p, size_t n, Char* out) {
    size_t i = 0;
    while (i < n) {
        const uint8_t lead = p[i];
        uint32_t c = 0;
        if (lead < 0x80) {
            c = lead;
            i += 1;
        } else if (lead < 0xE0) {
            c = (uint32_t{lead} & 0x1F) << 6 | (p[i + 1] & 0x3Fu);
            i += 2;
        } else if (lead < 0xF0) {
            c = (uint32_t{lead} & 0x0F) << 12 | (p[i + 1] & 0x3Fu) << 6 | (p[i + 2] & 0x3Fu);
            i += 3;
        } else {
            c = (uint32_t{lead} & 0x07) << 18 | (p[i + 1] & 0x3Fu) << 12 | (p[i + 2] & 0x3Fu) << 6
                | (p[i + 3] & 0x3Fu);
            i += 4;
        }
        *out++ = static_cast<Char>(c);
    }
}

}  // namespace detail

/// A new reference to `bytes` decoded as UTF-8 with errors="surrogateescape", or nullptr
/// with a Python error set.
inline PyObject* decode_text_object(std::string_view bytes) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size();
    size_t n_chars = 0;
    uint32_t max_char = 0;
    if (!detail::scan_utf8(p, n, n_chars, max_char)) {
        return PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(n), "surrogateescape");
    }
    PyObject* text
        = PyUnicode_New(static_cast<Py_ssize_t>(n_chars), static_cast<Py_UCS4>(max_char));
    if (text == nullptr) {
        return nullptr;
    }
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        if (max_char < 0x80) {
            std::memcpy(PyUnicode_1BYTE_DATA(text), p, n);  // ASCII: bytes are characters
        } else {
            detail::write_utf8(p, n, PyUnicode_1BYTE_DATA(text));
        }
        break;
    case PyUnicode_2BYTE_KIND:
        detail::write_utf8(p, n, PyUnicode_2BYTE_DATA(text));
        break;
    default:
        detail::write_utf8(p, n, PyUnicode_4BYTE_DATA(text));
        break;
    }
    return text;
}

inline py::str decode_text(std::string_view bytes) {
    PyObject* text = decode_text_object(bytes);
    if (text == nullptr) {
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::str>(text);
}

}  // namespace iris::bind
