// Fuzz entry point for the GGUF parser: any input must parse or raise GGUFError, never
// crash, hang or read out of bounds. Each input is tried as a whole file and as the first
// bytes of a file of unknown size, and every string of every string array is read back.
#include <cstddef>
#include <cstdint>
#include <string>

#include "gguf/gguf_parser.hpp"

namespace {

void walk_strings(const iris::gguf::Document& document) {
    for (const auto& index : document.header.string_arrays) {
        iris::gguf::StringCursor cursor(document, index, 0);
        for (uint64_t i = 0; i < index.count; ++i) {
            (void)cursor.next();
        }
        if (index.count > 0) {
            (void)iris::gguf::string_at(document, index, index.count - 1);
        }
    }
    for (const auto& kv : document.header.kvs) {
        if (kv.value.type != iris::gguf::ValueType::String
            && kv.value.type != iris::gguf::ValueType::Array) {
            (void)iris::gguf::read_scalar(document, kv.value);
        }
    }
}

void parse_as(const uint8_t* data, size_t size, bool size_known) {
    // The source must own its bytes for the lifetime of the document.
    auto source
        = iris::make_owned_source(std::string(reinterpret_cast<const char*>(data), size), "<fuzz>");
    try {
        const auto document = iris::gguf::parse_source(
            std::move(source), size_known ? std::optional<uint64_t>(size) : std::nullopt);
        walk_strings(*document);
    } catch (const iris::gguf::GGUFError&) {
        // Rejecting bad input with a GGUFError is the expected outcome.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    parse_as(data, size, true);
    parse_as(data, size, false);
    return 0;
}
