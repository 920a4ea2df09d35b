// Unit tests for the GGUF parser, on files built byte by byte here. The Python suite checks
// the parser against gguf-py on real writer output; these cover the core on its own.
#include <cstring>
#include <string>
#include <vector>

#include "check.hpp"
#include "common/checked_math.hpp"
#include "gguf/ggml_types.hpp"
#include "gguf/gguf_parser.hpp"

using iris::gguf::ErrorKind;
using iris::gguf::GGUFError;
using iris::gguf::ValueType;

namespace {

/// Writes GGUF fields in either byte order and either length width (v1 uses 4 bytes).
class Builder {
public:
    explicit Builder(uint32_t version = 3, bool big_endian = false)
        : big_endian_(big_endian), length_size_(version == 1 ? 4 : 8) {
        bytes_ += "GGUF";
        u32(version);
    }

    Builder& u8(uint8_t v) {
        bytes_.push_back(static_cast<char>(v));
        return *this;
    }
    Builder& u32(uint32_t v) { return put(v, 4); }
    Builder& u64(uint64_t v) { return put(v, 8); }
    Builder& length(uint64_t v) { return put(v, length_size_); }
    Builder& str(const std::string& s) {
        length(s.size());
        bytes_ += s;
        return *this;
    }
    Builder& counts(uint64_t n_tensors, uint64_t n_kv) { return length(n_tensors).length(n_kv); }
    Builder& kv_u32(const std::string& key, uint32_t v) {
        return str(key).u32(static_cast<uint32_t>(ValueType::Uint32)).u32(v);
    }
    Builder& kv_str(const std::string& key, const std::string& v) {
        return str(key).u32(static_cast<uint32_t>(ValueType::String)).str(v);
    }
    Builder& kv_strings(const std::string& key, const std::vector<std::string>& items) {
        str(key).u32(static_cast<uint32_t>(ValueType::Array));
        u32(static_cast<uint32_t>(ValueType::String)).length(items.size());
        for (const auto& item : items) {
            str(item);
        }
        return *this;
    }
    Builder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                    uint64_t offset) {
        str(name).u32(static_cast<uint32_t>(ne.size()));
        for (uint64_t d : ne) {
            length(d);
        }
        return u32(type).u64(offset);
    }
    Builder& pad_to(uint64_t alignment) {
        while (bytes_.size() % alignment != 0) {
            bytes_.push_back('\0');
        }
        return *this;
    }
    Builder& zeros(size_t n) {
        bytes_.append(n, '\0');
        return *this;
    }
    [[nodiscard]] const std::string& bytes() const { return bytes_; }

private:
    Builder& put(uint64_t v, int size) {
        for (int i = 0; i < size; ++i) {
            const int shift = big_endian_ ? 8 * (size - 1 - i) : 8 * i;
            bytes_.push_back(static_cast<char>((v >> shift) & 0xFF));
        }
        return *this;
    }

    bool big_endian_;
    int length_size_;
    std::string bytes_;
};

iris::gguf::Header parse(const std::string& bytes) {
    return iris::gguf::parse_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                    bytes.size(), "test.gguf");
}

std::shared_ptr<const iris::gguf::Document> document(const std::string& bytes) {
    return iris::gguf::parse_source(iris::make_owned_source(bytes, "test.gguf"), bytes.size());
}

/// A small valid model: two KVs, a string array, two F32 tensors packed in order.
std::string small_model(uint32_t version = 3, bool big_endian = false) {
    Builder b(version, big_endian);
    b.counts(2, 3)
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.context_length", 4096)
        .kv_strings("tokenizer.ggml.tokens", {"<s>", "", "hello", "\xff\xfe"})
        .tensor("a", {8, 2}, 0, 0)
        .tensor("b", {4}, 0, 64)
        .pad_to(32)
        .zeros(64 + 16);
    return b.bytes();
}

}  // namespace

TEST(checked_math_detects_overflow) {
    CHECK(!iris::checked_add(UINT64_MAX, 1));
    CHECK(iris::checked_add(UINT64_MAX - 1, 1) == UINT64_MAX);
    CHECK(!iris::checked_mul(uint64_t{1} << 32, uint64_t{1} << 32));
    CHECK(iris::checked_mul(0, UINT64_MAX) == 0u);
    CHECK(iris::checked_align_up(33, 32) == 64u);
    CHECK(!iris::checked_align_up(UINT64_MAX - 3, 32));
    CHECK(iris::is_power_of_two(1) && !iris::is_power_of_two(0) && !iris::is_power_of_two(3));
}

TEST(type_table_is_complete_and_sizes_blocks) {
    const auto* q4k = iris::gguf::find_ggml_type(12);
    CHECK(q4k != nullptr && std::strcmp(q4k->name, "Q4_K") == 0);
    CHECK(q4k->block_size == 256 && q4k->type_size == 144);
    CHECK(iris::gguf::find_ggml_type(4)->status == iris::gguf::TypeStatus::Removed);
    CHECK(iris::gguf::find_ggml_type(43) == nullptr);
    CHECK(iris::gguf::ggml_type_table().size() == 43);
    const auto* q8 = iris::gguf::find_ggml_type(8);
    CHECK(iris::gguf::tensor_nbytes(*q8, 640, 640 * 262144) == uint64_t{20} * 34 * 262144);
    CHECK(!iris::gguf::tensor_nbytes(*q8, 33, 33));  // not whole blocks
}

TEST(parses_a_small_model) {
    const auto bytes = small_model();
    const auto header = parse(bytes);
    CHECK(header.version == 3);
    CHECK(!header.big_endian);
    CHECK(header.kvs.size() == 3);
    CHECK(header.tensors.size() == 2);
    CHECK(header.data_offset % 32 == 0);
    CHECK(header.data_offset + 64 + 16 == bytes.size());
    CHECK(header.tensors[0].nbytes == 64u);
    CHECK(header.tensors[1].offset == 64u);
    CHECK(header.string_arrays.size() == 1 && header.string_arrays[0].count == 4);
    CHECK(header.warnings.empty());
}

TEST(reads_big_endian_and_v1_files_like_little_endian_v3) {
    const auto reference = parse(small_model());
    for (const auto& [version, big] : {std::pair{3u, true}, std::pair{1u, false}}) {
        const auto bytes = small_model(version, big);
        const auto doc = document(bytes);
        CHECK(doc->header.big_endian == big);
        CHECK(doc->header.version == version);
        CHECK(doc->header.tensors.size() == reference.tensors.size());
        const auto& ctx = doc->header.kvs[1].value;
        CHECK(std::get<uint64_t>(iris::gguf::read_scalar(*doc, ctx)) == 4096u);
        const auto& tokens = doc->header.string_arrays[0];
        CHECK(iris::gguf::string_at(*doc, tokens, 2) == "hello");
        CHECK(iris::gguf::string_at(*doc, tokens, 1).empty());
    }
}

TEST(string_cursor_walks_across_index_checkpoints) {
    std::vector<std::string> items;
    for (int i = 0; i < 200; ++i) {
        items.push_back("token-" + std::to_string(i));
    }
    Builder b;
    b.counts(0, 1).kv_strings("tokenizer.ggml.tokens", items);
    const auto doc = document(b.bytes());
    const auto& index = doc->header.string_arrays[0];
    CHECK(index.checkpoints.size() == 4);  // elements 0, 64, 128, 192
    for (uint64_t i : {0u, 63u, 64u, 65u, 130u, 199u}) {
        CHECK(iris::gguf::string_at(*doc, index, i) == items[i]);
    }
    iris::gguf::StringCursor cursor(*doc, index, 60);
    for (size_t i = 60; i < items.size(); ++i) {
        CHECK(cursor.next() == items[i]);
    }
    CHECK_THROWS_AS(iris::gguf::string_at(*doc, index, 200), std::out_of_range, [](auto&) {});
}

TEST(vocab_only_file_has_no_padding) {
    Builder b;
    b.counts(0, 1).kv_str("general.architecture", "llama");
    const auto header = parse(b.bytes());
    CHECK(header.data_offset == b.bytes().size());
}

TEST(every_truncation_is_a_truncated_error_and_every_prefix_asks_for_more) {
    const auto bytes = small_model();
    for (size_t n = 0; n < bytes.size(); ++n) {
        const std::string prefix = bytes.substr(0, n);
        CHECK_THROWS_AS(parse(prefix), GGUFError, [&](const GGUFError& e) {
            CHECK(e.kind() == ErrorKind::Truncated);
            CHECK(e.bytes_needed() > n);
        });
        // The same bytes as the start of a longer file: the parser names what it needs,
        // and retrying with that much always gets further.
        uint64_t have = n;
        int rounds = 0;
        while (rounds++ < 100) {
            try {
                iris::gguf::parse_header(reinterpret_cast<const uint8_t*>(bytes.data()), have,
                                         bytes.size(), "prefix");
                break;
            } catch (const GGUFError& e) {
                CHECK(e.kind() == ErrorKind::NeedMoreData);
                CHECK(e.bytes_needed() > have && e.bytes_needed() <= bytes.size());
                have = e.bytes_needed();
            }
        }
        CHECK(rounds < 100);
    }
}

TEST(rejects_bad_magic_and_names_the_format) {
    CHECK_THROWS_AS(parse(std::string("PK\x03\x04rest-of-zip", 16)), GGUFError,
                    [](const GGUFError& e) {
                        CHECK(e.kind() == ErrorKind::Malformed);
                        CHECK(std::string(e.what()).find("zip") != std::string::npos);
                    });
    CHECK_THROWS_AS(parse(""), GGUFError, [](const GGUFError& e) {
        CHECK(std::string(e.what()).find("empty") != std::string::npos);
    });
}

TEST(rejects_absurd_counts_before_allocating) {
    Builder b;
    b.counts(0, UINT64_MAX);
    CHECK_THROWS_AS(parse(b.bytes()), GGUFError,
                    [](const GGUFError& e) { CHECK(e.kind() == ErrorKind::Malformed); });
    Builder huge_string;
    huge_string.counts(0, 1).length(UINT64_MAX).zeros(16);
    CHECK_THROWS_AS(parse(huge_string.bytes()), GGUFError, [](const GGUFError& e) {
        CHECK(e.offset() == 24);
        CHECK(e.kind() == ErrorKind::Malformed);
    });
}

TEST(rejects_too_many_dims_removed_types_and_overflowing_sizes) {
    Builder dims;
    dims.counts(1, 0).str("t").u32(5);
    CHECK_THROWS_AS(parse(dims.bytes() + std::string(64, '\0')), GGUFError, [](const GGUFError& e) {
        CHECK(std::string(e.what()).find("5 dimensions") != std::string::npos);
    });

    Builder removed;
    removed.counts(1, 0).tensor("t", {32}, 4, 0).pad_to(32).zeros(32);
    CHECK_THROWS_AS(parse(removed.bytes()), GGUFError, [](const GGUFError& e) {
        CHECK(std::string(e.what()).find("Q4_2") != std::string::npos);
    });

    Builder overflow;  // CVE-2026-33298's shape: a Q8_0 row with 2^42 + 1 rows
    overflow.counts(1, 0).tensor("t", {640, (uint64_t{1} << 42) + 1, 1u << 20}, 8, 0).pad_to(32);
    CHECK_THROWS_AS(parse(overflow.bytes()), GGUFError,
                    [](const GGUFError& e) { CHECK(e.kind() != ErrorKind::NeedMoreData); });
}

TEST(rejects_overlapping_and_misaligned_tensors) {
    Builder overlap;
    overlap.counts(2, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 32).pad_to(32).zeros(128);
    CHECK_THROWS_AS(parse(overlap.bytes()), GGUFError, [](const GGUFError& e) {
        CHECK(std::string(e.what()).find("overlaps") != std::string::npos);
    });
    Builder misaligned;
    misaligned.counts(1, 0).tensor("a", {4}, 0, 8).pad_to(32).zeros(64);
    CHECK_THROWS_AS(parse(misaligned.bytes()), GGUFError, [](const GGUFError& e) {
        CHECK(std::string(e.what()).find("alignment") != std::string::npos);
    });
}

TEST(unknown_types_are_listed_with_unknown_size) {
    Builder b;
    b.counts(1, 0).tensor("future", {32}, 99, 0).pad_to(32);
    const auto header = parse(b.bytes());
    CHECK(header.tensors.size() == 1);
    CHECK(!header.tensors[0].nbytes.has_value());
    CHECK(header.warnings.size() == 1);
}

TEST(alignment_must_be_a_uint32_power_of_two) {
    Builder good;
    good.counts(1, 1).kv_u32("general.alignment", 64).tensor("a", {4}, 0, 0).pad_to(64).zeros(16);
    const auto header = parse(good.bytes());
    CHECK(header.alignment == 64 && header.data_offset % 64 == 0);
    Builder bad;
    bad.counts(0, 1).kv_u32("general.alignment", 48);
    CHECK_THROWS_AS(parse(bad.bytes()), GGUFError, [](auto&) {});
    Builder wrong_type;
    wrong_type.counts(0, 1)
        .str("general.alignment")
        .u32(static_cast<uint32_t>(ValueType::Uint64))
        .u64(32);
    CHECK_THROWS_AS(parse(wrong_type.bytes()), GGUFError, [](auto&) {});
}

TEST(deeply_nested_arrays_stop_at_the_depth_limit) {
    Builder b;
    b.counts(0, 1).str("nested").u32(static_cast<uint32_t>(ValueType::Array));
    for (int depth = 0; depth < 10000; ++depth) {
        b.u32(static_cast<uint32_t>(ValueType::Array)).length(1);
    }
    CHECK_THROWS_AS(parse(b.bytes()), GGUFError, [](const GGUFError& e) {
        CHECK(std::string(e.what()).find("deeper") != std::string::npos);
    });

    Builder shallow;  // [[1, 2], []] of u8 is fine, with a llama.cpp warning
    shallow.counts(0, 1).str("nested").u32(static_cast<uint32_t>(ValueType::Array));
    shallow.u32(static_cast<uint32_t>(ValueType::Array)).length(2);
    shallow.u32(static_cast<uint32_t>(ValueType::Uint8)).length(2).u8(1).u8(2);
    shallow.u32(static_cast<uint32_t>(ValueType::Uint8)).length(0);
    const auto header = parse(shallow.bytes());
    CHECK(header.nested_values.size() == 2);
    CHECK(header.nested_values[0].count == 2 && header.nested_values[1].count == 0);
    CHECK(header.warnings.size() == 1);
}

TEST(duplicate_keys_and_tensor_names_are_rejected) {
    Builder keys;
    keys.counts(0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2);
    CHECK_THROWS_AS(parse(keys.bytes()), GGUFError, [](const GGUFError& e) {
        CHECK(std::string(e.what()).find("duplicate key") != std::string::npos);
    });
    Builder names;
    names.counts(2, 0).tensor("t", {4}, 0, 0).tensor("t", {4}, 0, 32).pad_to(32).zeros(64);
    CHECK_THROWS_AS(parse(names.bytes()), GGUFError, [](auto&) {});
}

int main() {
    return iris::testing::run_all();
}
